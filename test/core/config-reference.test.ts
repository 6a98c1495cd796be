/** The README's config reference is the one generated from the schema (npm run docs:config). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { withConfigReference } from '../../src/core/config-reference';

test('README config reference is up to date', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  assert.equal(readme, withConfigReference(readme), 'run `npm run docs:config`');
  assert.match(readme, /`sampling\.samplesPerCycle` \| integer \(> 0\) \| `150` \|/);
});

test('README quick start names the two commands', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  assert.match(readme, /npm run demo/);
  assert.match(readme, /npm test/);
});
