/**
 * The runner's output is untrusted bytes: whatever it holds, reading it yields a storable
 * classified outcome or (only for the runner's own `error` event, or no trace at all) an
 * infrastructure error — never an exception. Property tests with fast-check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SandboxOutcome, type ProgressEvent } from '../../src/core/sandbox';
import { heartbeatDetails } from '../../src/activities/sandbox-run';
import { storableText } from '../../src/core/storable-text';
import { failedOutcome, interpretRun, type RunnerRun } from '../../src/sandbox/interpret';
import { LineSplitter } from '../../src/sandbox/lines';
import { UnsafeModeRefused, settingsFromEnv } from '../../src/sandbox/request';
import { storable, trainingRow, validationRow } from '../../src/sandbox/rows';

const exit = { code: 0, signal: null };
const run = (lines: string[], kind: 'validate' | 'train' = 'validate'): RunnerRun => ({ kind, lines, exit, stderrTail: 'tail\u0000' });

const validResult = {
  kind: 'validate', ok: true, failure: null, dataset: { name: 'synthetic', inputShape: [3, 32, 32], classes: 10 }, warnings: [],
  timings: { totalS: 1 }, sandbox: null, logs: { stdout: '', stderr: '', truncatedBytes: 0 }, runnerVersion: '1',
  torchVersion: '2', outputShape: [2, 10], params: 10, flops: 20, graph: null, structuralHash: null, claimed: ['params'],
};
const line = (value: unknown) => JSON.stringify(value);

/** No NUL or lone surrogate anywhere, keys included. */
function isStorable(value: unknown): boolean {
  return JSON.stringify(value) === JSON.stringify(storable(value));
}

test('a well-formed result is the outcome; progress and junk progress lines are skipped', () => {
  const verdict = interpretRun(run([line({ event: 'progress', stage: 'start', elapsedS: 0.1 }), line({ event: 'progress', stage: 7 }), line({ event: 'result', result: validResult })]));
  assert.equal(verdict.type, 'outcome');
  if (verdict.type !== 'outcome') return;
  assert.equal(verdict.outcome.ok, true);
  assert.equal(verdict.ignoredLines, 1);
});

test('what the runner cannot stand behind is the candidate\'s classified crash', () => {
  const cases: Record<string, string[]> = {
    'non-JSON': ['{"event":"result","result":'],
    'bad schema': [line({ event: 'result', result: { ...validResult, params: -5 } })],
    'unknown failure class': [line({ event: 'result', result: { ...validResult, ok: false, failure: { class: 'weird', stage: 's', message: 'm' } } })],
    'two results': [line({ event: 'result', result: validResult }), line({ event: 'result', result: validResult })],
    'wrong kind': [line({ event: 'result', result: { ...validResult, kind: 'train' } })],
    'huge number': ['{"event":"result","result":' + line(validResult).replace('"params":10', '"params":1e999') + '}'],
  };
  for (const [name, lines] of Object.entries(cases)) {
    const verdict = interpretRun(run(lines));
    assert.equal(verdict.type, 'outcome', name);
    if (verdict.type !== 'outcome') continue;
    assert.equal(verdict.outcome.ok, false, name);
    assert.equal(verdict.outcome.failure?.class, 'crash', name);
    assert.ok(SandboxOutcome.safeParse(verdict.outcome).success, name);
    assert.ok(isStorable(verdict.outcome), name);
  }
  const overflow = interpretRun({ ...run([]), overflow: 'more than 64 MiB' });
  assert.equal(overflow.type === 'outcome' && overflow.outcome.failure?.class, 'crash');
});

test('only the runner\'s own error event, or a runner that left nothing, is infrastructure', () => {
  const error = interpretRun(run([line({ event: 'error', message: 'bubblewrap (bwrap) is not installed' })]));
  assert.deepEqual(error, { type: 'infra', message: 'bubblewrap (bwrap) is not installed', retryable: false });
  const busy = interpretRun(run([line({ event: 'error', message: 'all 32 sandbox slots stayed busy', retryable: true })]));
  assert.equal(busy.type === 'infra' && busy.retryable, true);
  const silent = interpretRun({ ...run([]), exit: { code: null, signal: 'SIGKILL' } });
  assert.equal(silent.type, 'infra');
  assert.equal(silent.type === 'infra' && silent.retryable, true);
});

test('failed outcomes of both kinds satisfy the schema and are storable', () => {
  for (const kind of ['validate', 'train'] as const) {
    const outcome = failedOutcome(kind, { class: 'crash', stage: 'runner', message: 'x\u0000\uD800'.repeat(5000) }, '\uDC00');
    assert.ok(SandboxOutcome.safeParse(outcome).success);
    assert.ok(isStorable(outcome));
    assert.ok((outcome.failure?.message.length ?? 0) <= 2000);
  }
});

// Lines a hostile program could make appear: arbitrary text, JSON of arbitrary shape, and
// result events with arbitrary field values spliced into a valid one.
const anyJson = fc.jsonValue({ maxDepth: 4 });
const forgedResult = fc
  .record({ key: fc.constantFrom(...Object.keys(validResult)), value: anyJson })
  .map(({ key, value }) => line({ event: 'result', result: { ...validResult, [key]: value } }));
const hostileLine = fc.oneof(
  fc.string({ unit: 'binary' }),
  anyJson.map((value) => line(value)),
  anyJson.map((value) => line({ event: 'progress', stage: value, elapsedS: value })),
  forgedResult,
  fc.constant(line({ event: 'result', result: validResult })),
);

test('property: any output reads as a storable, schema-valid outcome or an infrastructure error, never a throw', () => {
  fc.assert(
    fc.property(fc.array(hostileLine, { maxLength: 6 }), fc.constantFrom('validate', 'train'), (lines, kind) => {
      const verdict = interpretRun(run(lines, kind as 'validate' | 'train'));
      if (verdict.type === 'infra') {
        assert.ok(lines.length === 0 || verdict.retryable || /"event":"error"/.test(lines.join('\n')) || lines.every((l) => !l.includes('result')));
        return;
      }
      assert.equal(verdict.outcome.kind, kind);
      assert.ok(SandboxOutcome.safeParse(verdict.outcome).success);
      const row = verdict.outcome.kind === 'validate' ? validationRow(verdict.outcome) : trainingRow(verdict.outcome);
      assert.ok(isStorable(row));
    }),
    { numRuns: 500 },
  );
});

test('property: heartbeat details stay small whatever the progress event holds', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 100_000 }), fc.double(), fc.integer(), (stage, elapsedS, images) => {
      const details = heartbeatDetails(7, { event: 'progress', stage, elapsedS, images } as ProgressEvent);
      assert.ok(JSON.stringify(details).length < 256);
      assert.equal(details.stage, storableText(details.stage));
    }),
  );
});

test('property: the line splitter yields the same lines however the stream is chunked', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 20 }), fc.array(fc.nat(40), { maxLength: 30 }), (parts, cuts) => {
      const text = parts.join('\n');
      const lines: string[] = [];
      const splitter = new LineSplitter((l) => lines.push(l));
      let at = 0;
      for (const cut of cuts) {
        splitter.push(text.slice(at, at + cut));
        at += cut;
      }
      splitter.push(text.slice(at));
      splitter.end();
      assert.deepEqual(lines, text.split('\n').filter((l) => l.trim()));
    }),
  );
  const splitter = new LineSplitter(() => undefined, 10);
  assert.throws(() => splitter.push('x'.repeat(11)), /longer than 10/);
});

test('unsafe mode needs ARCHLOOP_ALLOW_UNSAFE=1', () => {
  assert.throws(() => settingsFromEnv({ ARCHLOOP_SANDBOX: 'none' }), UnsafeModeRefused);
  assert.equal(settingsFromEnv({ ARCHLOOP_SANDBOX: 'none', ARCHLOOP_ALLOW_UNSAFE: '1' }).mode, 'none');
  assert.equal(settingsFromEnv({}).mode, 'bwrap');
  assert.equal(settingsFromEnv({ ARCHLOOP_SANDBOX_SLOTS: '4' }).slots, 4);
});
