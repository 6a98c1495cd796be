/**
 * `archloop validate|train <file> --json` print exactly the row values the activities store,
 * and exit 0 whenever the program got a result — also when the program forged the runner's
 * event channel (then the result is its classified failure).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { register, runFile } from '../../src/cli/validate';
import { REPO_ROOT } from '../../src/env';
import { validationRow } from '../../src/sandbox/rows';
import { FORGERIES, GOOD_NET, SHAPE_BUG, SMALL, forging } from '../sandbox/helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'archloop-cli-'));
const config = path.join(dir, 'config.json');
writeFileSync(config, JSON.stringify({ dataset: SMALL.dataset, contract: { ...SMALL.contract, maxParams: 100_000 }, training: SMALL.training }));
const file = (name: string, code: string) => {
  const target = path.join(dir, name);
  writeFileSync(target, code);
  return target;
};
const options = { dataset: 'synthetic', preset: 'demo', config };

test('validate --json prints the validation row', async () => {
  const row = await runFile('validate', file('good.py', GOOD_NET), options);
  assert.ok('validation' in row);
  assert.equal(row.status, 'valid');
  assert.equal(row.sandboxMode, 'bwrap');
  assert.ok(row.validation.claimed.includes('params'), 'params are stored as the candidate\'s claim');
  assert.deepEqual(validationRow({ ...row.validation, graph: row.graphIr }), row);
});

test('the registered command prints JSON and exits 0 for an invalid program', async () => {
  const program = new Command().exitOverride();
  const chunks: string[] = [];
  process.exitCode = undefined;
  register(program, { out: (text) => chunks.push(text), err: () => undefined });
  await program.parseAsync(['node', 'archloop', 'validate', file('bad.py', SHAPE_BUG), '--dataset', 'synthetic', '--preset', 'demo', '--config', config, '--json']);
  const printed = JSON.parse(chunks.join(''));
  assert.equal(printed.status, 'invalid');
  assert.equal(printed.failureClass, 'shape');
  assert.equal(printed.validation.kind, 'validate');
  assert.equal(process.exitCode, undefined);
});

test('every forged event channel ends as the candidate\'s classified failure', async () => {
  for (const [name, { kind, lines }] of Object.entries(FORGERIES)) {
    const row = await runFile(kind, file(`forged-${kind}.py`, forging(lines)), options);
    assert.ok(row.failureClass, `${name}: ${JSON.stringify(row).slice(0, 500)}`);
    assert.ok(!JSON.stringify(row).includes('\\u0000') && !/\\ud[89a-f]/i.test(JSON.stringify(row)), name);
    if (name === 'params over the limit') assert.equal(row.failureClass, 'too-large', name);
  }
});

test('several files: one compact JSON line each, in input order, file first; a file archloop cannot run is an error line', async () => {
  const program = new Command().exitOverride();
  const chunks: string[] = [];
  const errors: string[] = [];
  process.exitCode = undefined;
  register(program, { out: (text) => chunks.push(text), err: (text) => errors.push(text) });
  const files = [file('one.py', GOOD_NET), file('two.py', SHAPE_BUG), path.join(dir, 'missing.py'), file('three.py', GOOD_NET)];
  await program.parseAsync(['node', 'archloop', 'validate', ...files, '--dataset', 'synthetic', '--preset', 'demo', '--config', config, '--json']);
  const lines = chunks.join('').trimEnd().split('\n');
  assert.equal(lines.length, 4);
  const rows = lines.map((line) => JSON.parse(line));
  assert.deepEqual(rows.map((row) => row.file), files);
  assert.deepEqual(rows.map((row) => row.status ?? 'error'), ['valid', 'invalid', 'error', 'valid']);
  assert.equal(rows[1].failureClass, 'shape');
  assert.match(rows[2].error, /ENOENT/);
  assert.deepEqual(Object.keys(rows[0]).slice(0, 2), ['file', 'status'], 'the file first, then the stored row values');
  const { file: _file, ...stored } = rows[0];
  assert.deepEqual(validationRow({ ...stored.validation, graph: stored.graphIr }), stored, 'exactly what a run would store');
  assert.equal(process.exitCode, 1, 'a file that could not be run makes the exit status 1');
  assert.match(errors.join(''), /1 of 4 files could not be run/);
  process.exitCode = undefined;
});

test('several files to train: one JSON line each, in input order, trained one after another in one zygote', async () => {
  const program = new Command().exitOverride();
  const chunks: string[] = [];
  process.exitCode = undefined;
  register(program, { out: (text) => chunks.push(text), err: () => undefined });
  const files = [file('train-one.py', GOOD_NET), file('train-two.py', GOOD_NET)];
  await program.parseAsync(['node', 'archloop', 'train', ...files, '--dataset', 'synthetic', '--preset', 'demo', '--config', config, '--json']);
  const rows = chunks.join('').trimEnd().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(rows.map((row) => row.file), files);
  assert.deepEqual(rows.map((row) => row.status), ['trained', 'trained'], JSON.stringify(rows.map((row) => row.failureMessage)));
  for (const row of rows) assert.ok(typeof row.accuracy === 'number' && row.sandboxMode === 'bwrap');
  // the CLI's train pool runs one job at a time: the same zygote forked both
  assert.deepEqual(rows.map((row) => row.training.sandbox.zygoteJobs).sort(), [0, 1]);
  assert.equal(process.exitCode, undefined);
});

for (const kind of ['validate', 'train'] as const) {
  test(`bin/archloop ${kind} exits 0 with JSON when the program forges its result`, () => {
    const forged = file(`forged-cli-${kind}.py`, forging(['{"event":"result","result":{"ok":tru']));
    const done = spawnSync(path.join(REPO_ROOT, 'bin', 'archloop'), [kind, forged, '--dataset', 'synthetic', '--preset', 'demo', '--config', config, '--json'], {
      encoding: 'utf8',
      env: process.env,
      timeout: 300_000,
    });
    assert.equal(done.status, 0, done.stderr);
    const row = JSON.parse(done.stdout);
    assert.equal(row.failureClass, 'crash');
    assert.match(row.failureMessage, /malformed/);
  });
}
