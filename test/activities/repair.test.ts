/**
 * Repair from errors: the diagnosis a failed program gets (pure), and the repair activity
 * against a scripted endpoint and a real Postgres: a new attempt row with its parent,
 * idempotent on retry, an unchanged program caught, resampling that reuses the design prompt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createRepairActivities } from '../../src/activities/repair';
import { createSampleActivities } from '../../src/activities/sample';
import type { Extraction } from '../../src/core/extract';
import { diagnose, failureLine, isRepairable, renderRepair, unchangedAsFailure } from '../../src/core/repair';
import { loadPromptTemplate } from '../../src/llm/prompt-files';
import { candidateRecord, updateCandidate } from '../../src/db/candidates';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { completion, startFakeServer, type FakeServer } from '../llm/fake-server';
import { activityEnv, insertRun, NET, runActivity } from '../llm/support';

const limits = { maxParams: 2_000_000, validateBatch: 2 };
const CODE = NET(16);

describe('diagnosis of a failed program', () => {
  test('the runner locations are read back: (line N: code) and syntax errors', () => {
    assert.equal(failureLine("RuntimeError: boom (line 12: x = self.fc(x))"), 12);
    assert.equal(failureLine('line 3, column 5: invalid syntax'), 3);
    assert.equal(failureLine('no class Net defined at module level'), null);
  });

  test('a flatten mismatch names both sizes and the fix', () => {
    const d = diagnose({ code: CODE, failureClass: 'forward', message: 'RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3136 and 1568x128) (line 15: return self.head(self.body(x)))' }, limits);
    assert.equal(d.line, 15);
    assert.equal(d.lineText, 'return self.head(self.body(x))');
    assert.match(d.advice, /receives 3136 features per sample but was built for 1568: construct it as `nn\.Linear\(3136, …\)`.*AdaptiveAvgPool2d\(1\)/);
    assert.equal(d.problem, 'RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3136 and 1568x128)');
  });

  test('contract, channel, tuple and size failures get the advice for what small models get wrong', () => {
    const advice = (failureClass: string, message: string) => diagnose({ code: CODE, failureClass, message }, limits).advice;
    assert.match(advice('contract', 'no module-level function supported_hyperparameters()'), /return.*\{'lr', 'momentum'\}/);
    assert.match(advice('contract', 'module-level example code runs at import: delete it (line 30: model = Net(1))'), /Delete the example code/);
    assert.match(advice('forward', 'RuntimeError: Given groups=1, weight of size [16, 3, 3, 3], expected input[2, 1, 28, 28] to have 3 channels, but got 1 channels instead'), /expects 3 input channels but receives 1.*in_shape\[1\]/);
    assert.match(advice('instantiate', "TypeError: 'tuple' object cannot be interpreted as an integer"), /out_shape\[0\]/);
    assert.match(advice('too-large', '3310026 parameters > limit 2000000'), /3,310,026 parameters, 1\.7× the budget of 2,000,000: shrink/);
    assert.match(advice('too-large', '6.074e+08 FLOPs per image > limit 2e+08'), /6\.074e\+08 FLOPs per image, over the budget of 2e\+08: downsample early/);
    assert.match(advice('too-large', 'some other budget message'), /under 2,000,000 parameters/, 'the class default otherwise');
    assert.match(advice('truncated', 'the token limit cut the program off'), /shorter program/);
  });

  test('a linear layer fed an unflattened tensor is told to flatten, not to change its size', () => {
    // From preflight: `self.flatten = nn.AdaptiveAvgPool2d(1)` then `self.fc1(x)` on (2, 256, 1, 1).
    const advice = (message: string) => diagnose({ code: CODE, failureClass: 'forward', message }, limits).advice;
    assert.match(advice('RuntimeError: addmm: mat1 and mat2 shapes cannot be multiplied (512x1 and 256x1024)'), /not flattened \(512 rows for a batch of 2\): add `x = torch\.flatten\(x, 1\)`.*fits as it is/);
    assert.match(advice('RuntimeError: mat1 and mat2 shapes cannot be multiplied (14x64 and 128x10)'), /not flattened.*construct it as `nn\.Linear\(448, …\)`/);
    assert.match(advice('RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x1152 and 6272x512)'), /receives 1152 features per sample but was built for 6272/);
  });

  test('a line outside the program is not quoted', () => {
    const d = diagnose({ code: 'x = 1\n', failureClass: 'forward', message: 'ValueError: bad (line 99: y)' }, limits);
    assert.equal(d.line, null);
  });

  test('the repair message quotes the program, the error, the line and the fix; values are never re-scanned', () => {
    const template = loadPromptTemplate('repair-v1');
    const values = { datasetTitle: 'Fashion-MNIST', channels: '1', height: '28', width: '28', classes: '10', maxParams: '2,000,000', prm: '{}' };
    const body = renderRepair(template.text, { code: `${CODE}# {{advice}}\n`, failureClass: 'forward', message: 'RuntimeError: boom (line 15: return self.head(self.body(x)))' }, limits, values);
    assert.match(body, /It fails: the forward pass fails\.\nRuntimeError: boom\n/);
    assert.match(body, /The failing line is line 15:\n    return self\.head\(self\.body\(x\)\)/);
    assert.match(body, /How to fix it: Make the layer sizes agree/);
    assert.ok(body.includes('# {{advice}}'), 'program text is inserted verbatim');
    const noCode = renderRepair(template.text, { code: '', failureClass: 'no-code', message: 'no Python code block' }, limits, values);
    assert.doesNotMatch(noCode, /```python\n\n```/);
  });

  test('repair-v2 puts the program first and the error, the line and the fix right before the reply', () => {
    const template = loadPromptTemplate('repair-v2');
    const values = { datasetTitle: 'Fashion-MNIST', channels: '1', height: '28', width: '28', classes: '10', maxParams: '2,000,000', prm: '{}' };
    const body = renderRepair(template.text, { code: CODE, failureClass: 'forward', message: 'RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3136 and 1568x128) (line 15: return self.head(self.body(x)))' }, limits, values);
    const at = (text: string) => {
      const i = body.indexOf(text);
      assert.ok(i >= 0, `missing: ${text}`);
      return i;
    };
    assert.ok(at('```python\n') < at('It fails: the forward pass fails.'), 'the program comes before the error');
    assert.ok(at('The failing line is line 15:') < at('How to fix it: A linear layer receives 3136 features'));
    assert.ok(at('How to fix it:') < at('Reply with the corrected complete file'));
    assert.match(body, /must change it where the error is/);
  });

  test('diagnosis never throws on arbitrary runner messages and code', () => {
    fc.assert(
      fc.property(fc.constantFrom('forward', 'contract', 'import', 'syntax', 'shape', 'weird'), fc.string(), fc.string(), (failureClass, message, code) => {
        const d = diagnose({ code, failureClass, message }, limits);
        assert.equal(typeof d.advice, 'string');
      }),
      { seed: 3, numRuns: 300 },
    );
  });

  test('a repair that returns the program it was given, whitespace aside, is a failure of its own', () => {
    const code = NET(8);
    const answer = (text: string): Extraction => ({ ok: true, code: text, source: 'fence', language: 'python' });
    assert.deepEqual(unchangedAsFailure(answer(`\n${code}\n\n`), code), {
      ok: false,
      failureClass: 'unchanged',
      message: 'the repair returned the program unchanged',
    });
    const changed = answer(NET(16));
    assert.equal(unchangedAsFailure(changed, code), changed);
    assert.equal(unchangedAsFailure(changed, null), changed, 'nothing to compare with');
    const failed: Extraction = { ok: false, failureClass: 'no-code', message: 'no code block' };
    assert.equal(unchangedAsFailure(failed, code), failed, 'a failed extraction keeps its own class');
  });

  test('which classes a further attempt may fix', () => {
    for (const cls of ['syntax', 'contract', 'import', 'instantiate', 'forward', 'shape', 'truncated', 'no-code', 'unchanged']) assert.ok(isRepairable(cls), cls);
    for (const cls of ['timeout', 'oom', 'sandbox-violation', 'low-accuracy', 'nan-loss', 'infra-failed']) assert.ok(!isRepairable(cls), cls);
    assert.ok(!isRepairable(null));
  });
});

describe('repairCandidate', () => {
  let db: TestDatabase;
  let server: FakeServer;
  let replies: string[] = [];

  before(async () => {
    db = await createTestDatabase();
    server = await startFakeServer((req) => {
      if (req.path === '/v1/models') return { status: 200, body: { object: 'list', data: [{ id: 'm' }] } };
      const n = req.body.n ?? 1;
      return { status: 200, body: completion(replies.splice(0, n)) };
    });
  });
  after(async () => {
    await server?.close();
    await db?.drop();
  });

  async function failedCandidate(runId: string, repair: 'feedback' | 'resample'): Promise<number> {
    await insertRun(db.pool, runId, { llm: { baseUrl: server.url, model: 'm', maxRetries: 0 }, sampling: { repair, repairAttempts: 2 }, prompt: { template: 'design-v2', includeReference: false } });
    replies = ['        self.fc = nn.Linear(1568, num_classes)\n```'];
    const { sampleBatch } = createSampleActivities({ pool: db.pool });
    const { candidateIds } = await runActivity(activityEnv(), sampleBatch, { runId, cycle: 1, model: 'm', firstIndex: 0, count: 1 });
    await updateCandidate(db.pool, candidateIds[0]!, {
      status: 'invalid',
      valid: false,
      failure_class: 'forward',
      failure_message: 'RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3136 and 1568x10) (line 14: x)',
    });
    return candidateIds[0]!;
  }

  test('feedback: the program goes back with its diagnosis; the answer is a new attempt with its parent; a retry stores nothing twice', async () => {
    const id = await failedCandidate('run-fix', 'feedback');
    const { repairCandidate } = createRepairActivities({ pool: db.pool });
    replies = ['        self.pool = nn.AdaptiveAvgPool2d(1)\n        self.fc = nn.Linear(8, num_classes)\n```'];
    const first = await runActivity(activityEnv(), repairCandidate, { candidateId: id });
    assert.equal(first.attempt, 1);
    const request = server.requests.at(-1)!.body;
    assert.match(request.messages[0].content, /It fails: the forward pass fails[\s\S]*receives 3136 features per sample but was built for 1568[\s\S]*```python\n```python|It fails: the forward pass fails[\s\S]*receives 3136 features/);
    assert.equal(request.messages.at(-1).role, 'assistant', 'the fix is prefilled with the contract header too');
    assert.equal(request.n, 1);
    const before = server.requests.length;
    assert.deepEqual(await runActivity(activityEnv(), repairCandidate, { candidateId: id }), first, 'a retried repair finds its stored attempt');
    assert.equal(server.requests.length, before);
    const repaired = await candidateRecord(db.pool, first.candidateId);
    assert.deepEqual([repaired.attempt, repaired.parent_id, repaired.sample_index], [1, id, 0]);
    assert.match(repaired.code!, /nn\.AdaptiveAvgPool2d\(1\)/);
  });

  test('a repair that hands back the same program is caught as unchanged', async () => {
    const id = await failedCandidate('run-same', 'feedback');
    const parent = await candidateRecord(db.pool, id);
    const prefill = server.requests.at(-1)!.body.messages.at(-1).content as string;
    replies = [parent.completion!.slice(prefill.length)];
    const { repairCandidate } = createRepairActivities({ pool: db.pool });
    const result = await runActivity(activityEnv(), repairCandidate, { candidateId: id });
    const repaired = await candidateRecord(db.pool, result.candidateId);
    assert.deepEqual([repaired.status, repaired.failure_class], ['extract-failed', 'unchanged']);
  });

  test('resample: the design prompt again, no feedback', async () => {
    const id = await failedCandidate('run-resample', 'resample');
    const design = server.requests.at(-1)!.body.messages;
    replies = ['        self.fc = nn.Linear(1, num_classes)\n```'];
    const { repairCandidate } = createRepairActivities({ pool: db.pool });
    await runActivity(activityEnv(), repairCandidate, { candidateId: id });
    assert.deepEqual(server.requests.at(-1)!.body.messages, design);
  });
});
