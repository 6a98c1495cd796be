import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SandboxOutcome, TrainOutcome, ValidateOutcome } from '../../src/core/sandbox';
import { storable, trainingRow, validationRow } from '../../src/sandbox/rows';

const base = {
  warnings: [],
  timings: { totalS: 1.5, sandboxS: 1.2 },
  sandbox: null,
  logs: { stdout: '', stderr: '', truncatedBytes: 0 },
  runnerVersion: '1',
  torchVersion: '2.x',
  dataset: { name: 'synthetic', inputShape: [3, 32, 32], classes: 10 },
};
const graph = { method: 'fx', nodes: [{ op: 'input', target: 'input', attrs: {}, inputs: [], shape: [2, 3, 32, 32], dtype: 'float32' }], output: [0] };

test('a valid outcome becomes a valid row with its graph in graph_ir', () => {
  const outcome = ValidateOutcome.parse({
    ...base, kind: 'validate', ok: true, failure: null, outputShape: [2, 10], params: 1234, flops: 5e6, graph, structuralHash: 'a'.repeat(64),
  });
  const row = validationRow(outcome);
  assert.equal(row.status, 'valid');
  assert.equal(row.valid, true);
  assert.equal(row.failureClass, null);
  assert.deepEqual(row.graphIr, outcome.graph);
  assert.equal('graph' in row.validation, false);
  assert.equal(row.params, 1234);
  assert.deepEqual(row.timings, { validate: base.timings });
});

test('an invalid outcome keeps the class and message', () => {
  const outcome = ValidateOutcome.parse({
    ...base, kind: 'validate', ok: false, failure: { class: 'shape', stage: 'shape', message: 'forward returned shape (2, 16)' },
    outputShape: null, params: null, flops: null, graph: null, structuralHash: null,
  });
  const row = validationRow(outcome);
  assert.equal(row.status, 'invalid');
  assert.equal(row.failureClass, 'shape');
  assert.match(row.failureMessage ?? '', /shape/);
});

test('low accuracy is train-failed but keeps the accuracy', () => {
  const outcome = TrainOutcome.parse({
    ...base, kind: 'train', ok: false, failure: { class: 'low-accuracy', stage: 'eval', message: 'accuracy 0.1 < 0.12' },
    accuracy: 0.1, correct: 26, testSize: 256, trainImages: 1024, epochs: 1, batchSize: 16, device: 'cpu', bf16: false,
    channelsLast: false, threads: 1, seed: 42, loss: { steps: 64, first: 2.3, last: 2.2, mean: 2.25, nonFinite: 0 },
  });
  const row = trainingRow(outcome);
  assert.equal(row.status, 'train-failed');
  assert.equal(row.accuracy, 0.1);
  assert.equal(row.failureClass, 'low-accuracy');
});

test('schemas reject unknown failure classes and malformed hashes', () => {
  const bad = { ...base, kind: 'validate', ok: false, failure: { class: 'weird', stage: 'x', message: 'm' }, outputShape: null, params: null, flops: null, graph: null, structuralHash: null };
  assert.equal(SandboxOutcome.safeParse(bad).success, false);
  const badHash = { ...bad, failure: null, ok: true, structuralHash: 'xyz' };
  assert.equal(SandboxOutcome.safeParse(badHash).success, false);
});

test('NUL characters and lone surrogates are replaced, in keys too, before they reach Postgres', () => {
  assert.deepEqual(storable({ a: 'x\u0000y', b: ['\u0000'], c: 3, d: null, 'k\uD800': 'ok \uD83D\uDE00 \uDC00' }), {
    a: 'x\uFFFDy', b: ['\uFFFD'], c: 3, d: null, 'k\uFFFD': 'ok \uD83D\uDE00 \uFFFD',
  });
});

test('rows say which sandbox mode produced them', () => {
  const sandbox = { mode: 'none', uid: 0, wallLimitS: 60, addressSpaceMb: null, cpuS: 70, nproc: 64, nofile: 256, fsizeMb: 64, exitCode: 0, signal: null };
  const outcome = ValidateOutcome.parse({
    ...base, sandbox, kind: 'validate', ok: false, failure: { class: 'shape', stage: 'shape', message: 'm' },
    outputShape: null, params: null, flops: null, graph: null, structuralHash: null,
  });
  assert.equal(validationRow(outcome).sandboxMode, 'none');
  assert.equal(validationRow({ ...outcome, sandbox: null }).sandboxMode, null);
});
