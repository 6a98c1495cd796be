/** `archloop validate|train <file> --json` print exactly the row values the activities store. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { register, runFile } from '../../src/cli/validate';
import { validationRow } from '../../src/sandbox/rows';
import { GOOD_NET, SHAPE_BUG, SMALL } from './helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'archloop-cli-'));
const config = path.join(dir, 'config.json');
writeFileSync(config, JSON.stringify({ dataset: SMALL.dataset, contract: SMALL.contract, training: SMALL.training }));
const file = (name: string, code: string) => {
  const target = path.join(dir, name);
  writeFileSync(target, code);
  return target;
};

test('validate --json prints the validation row', async () => {
  const row = await runFile('validate', file('good.py', GOOD_NET), { dataset: 'synthetic', preset: 'demo', config });
  assert.ok('validation' in row);
  assert.equal(row.status, 'valid');
  assert.deepEqual(validationRow({ ...row.validation, graph: row.graphIr }), row);
});

test('the registered command prints JSON and exits 1 for an invalid program', async () => {
  const program = new Command().exitOverride();
  const chunks: string[] = [];
  register(program, { out: (text) => chunks.push(text), err: () => undefined });
  await program.parseAsync(['node', 'archloop', 'validate', file('bad.py', SHAPE_BUG), '--dataset', 'synthetic', '--preset', 'demo', '--config', config, '--json']);
  const printed = JSON.parse(chunks.join(''));
  assert.equal(printed.status, 'invalid');
  assert.equal(printed.failureClass, 'shape');
  assert.equal(printed.validation.kind, 'validate');
  assert.equal(process.exitCode, 1);
  process.exitCode = 0;
});
