/** Bad input at the command line: one clear line on stderr, a non-zero exit, no stack trace. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const BIN = path.join(__dirname, '..', '..', 'bin', 'archloop');

function archloop(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(BIN, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
}

const oneClearLine = (stderr: string) => {
  assert.equal(stderr.split('\n').length, 1, `one line, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /\s+at\s.+:\d+:\d+/, 'no stack trace');
};

test('unknown preset', () => {
  const r = archloop(['run', '--preset', 'nope']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'archloop: unknown preset "nope" (known: paper, demo)');
});

test('invalid config file content names the field', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'archloop-cli-'));
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ sampling: { temperature: 'hot' } }));
  const r = archloop(['run', '--config', file]);
  assert.equal(r.code, 1);
  oneClearLine(r.stderr);
  assert.match(r.stderr, /sampling\.temperature/);
  writeFileSync(file, '{ nope');
  const broken = archloop(['run', '--config', file]);
  assert.match(broken.stderr, /not valid JSON/);
  const missing = archloop(['run', '--config', path.join(dir, 'missing.json')]);
  assert.match(missing.stderr, /cannot read config file .*ENOENT/);
});

test('unreachable Temporal', () => {
  const r = archloop(['status', 'run-x'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  assert.equal(r.code, 1);
  oneClearLine(r.stderr);
  assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
});

test('bad worker flags and unknown commands', () => {
  assert.match(archloop(['worker', '--queue', 'tpu']).stderr, /--queue must be control, gpu or all/);
  const unknown = archloop(['frobnicate']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown command/);
});
