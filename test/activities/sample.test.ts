/**
 * sampleBatch against a scripted OpenAI-compatible server (the LLM is not what these tests
 * are about; storage, idempotency and failure mapping are) and a real Postgres.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createSampleActivities } from '../../src/activities/sample';
import { buildConfig } from '../../src/core/config';
import { profileOf } from '../../src/corpus/checks';
import type { SampleBatchInput } from '../../src/core/stages';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { apiError, startFakeServer, type FakeServer, type RecordedRequest, type ScriptedResponse } from '../llm/fake-server';
import { markAdapterPublished, markAdapterReady, upsertTrainingAdapter } from '../../src/db/adapters';
import { candidateRecords, deleteCandidate } from '../../src/db/candidates';
import { promptByHash } from '../../src/db/prompts';
import { activityEnv, insertRun, insertSeed, markChecked, NET, runActivity } from '../llm/support';

const ANSWERS: [string, string][] = [
  [`Here is my design:\n\`\`\`python\n${NET(24)}\`\`\`\nIt should train fast.`, 'stop'],
  ['I would stack a few convolutions.', 'stop'],
  [`\`\`\`python\n${NET(8).slice(0, 120)}`, 'length'],
];

/** Answers chat requests with ANSWERS (rotating by request); `models` are the served names. */
function chatServer(models: string[], overrides: (req: RecordedRequest) => ScriptedResponse | undefined = () => undefined) {
  let served = 0;
  return (req: RecordedRequest): ScriptedResponse => {
    const special = overrides(req);
    if (special) return special;
    if (req.path === '/v1/models') return { status: 200, body: { object: 'list', data: models.map((id) => ({ id })) } };
    const choices = Array.from({ length: req.body.n }, (_, i) => {
      const [content, finish] = ANSWERS[(served + i) % ANSWERS.length]!;
      return { index: i, message: { role: 'assistant', content }, finish_reason: finish };
    });
    served += req.body.n;
    return { status: 200, body: { id: 'c', choices, usage: { prompt_tokens: 900, completion_tokens: 120 * req.body.n } } };
  };
}

describe('sampleBatch', () => {
  let db: TestDatabase;
  let server: FakeServer;
  const sampleBatch = (input: SampleBatchInput) => createSampleActivities({ pool: db.pool, backoff: { baseDelayMs: 5, maxDelayMs: 10 } }).sampleBatch(input);

  before(async () => {
    db = await createTestDatabase();
    server = await startFakeServer(chatServer(['smollm2-135m-instruct']));
    for (const [name, width, accuracy] of [['Good', 32, 0.62], ['Weak', 4, 0.2]] as const) {
      const id = await insertSeed(db.pool, name, NET(width), accuracy);
      // Seeds teach only once they validated at the run's shape (src/corpus/checks.ts).
      await markChecked(db.pool, id, profileOf(buildConfig('demo', {})), true);
    }
    await insertRun(db.pool, 'run-a', { llm: { baseUrl: server.url, maxRetries: 1 }, sampling: { maxNewTokens: 768 }, prompt: { template: 'design-v1' } });
  });
  after(async () => {
    await server?.close();
    await db?.drop();
  });

  test('stores the prompt, every raw completion, then code or a classified failure', async () => {
    const heartbeats: unknown[] = [];
    const result = await runActivity(activityEnv(heartbeats), sampleBatch, { runId: 'run-a', cycle: 1, model: 'smollm2-135m-instruct', firstIndex: 0, count: 3 });
    assert.equal(server.requests.length, 1);
    assert.deepEqual([server.requests[0]!.body.n, server.requests[0]!.body.top_k, server.requests[0]!.body.max_tokens], [3, 100, 768]);
    assert.equal(result.candidateIds.length, 3);
    assert.equal(result.extracted, 1);
    assert.ok(heartbeats.length >= 1);

    const rows = await candidateRecords(db.pool, { runId: 'run-a' });
    const prompt = (await promptByHash(db.pool, rows[0]!.prompt_hash!))!;
    assert.deepEqual(rows.map((r) => [r.sample_index, r.status, r.failure_class, r.code !== null]), [
      [0, 'sampled', null, true],
      [1, 'extract-failed', 'no-code', false],
      [2, 'extract-failed', 'truncated', false],
    ]);
    assert.deepEqual(rows.map((r) => r.completion), ANSWERS.map(([text]) => text));
    assert.equal(rows[0]!.usage.promptTokens, 900);
    assert.equal(rows[0]!.usage.finishReason, 'stop');
    assert.equal(typeof rows[0]!.usage.latencyMs, 'number');
    // The prompt: the demo task, and the only reference above referenceMinAccuracy (0.4).
    assert.ok(rows.every((r) => r.prompt_hash === prompt.hash), 'one prompt for the batch');
    assert.equal(prompt.template, 'design-v1');
    assert.match(prompt.body, /Fashion-MNIST, 10 classes/);
    assert.match(prompt.body, /reached 62\.0 % accuracy on CIFAR-10/);
    assert.match(prompt.body, /nn\.Conv2d\(in_shape\[1\], 32, 3\)/);
  });

  test('a retry asks only for the sample indexes not stored yet', async () => {
    const before = server.requests.length;
    const ids = (await candidateRecords(db.pool, { runId: 'run-a' })).map((r) => r.id);
    const again = await runActivity(activityEnv(), sampleBatch, { runId: 'run-a', cycle: 1, model: 'smollm2-135m-instruct', firstIndex: 0, count: 3 });
    assert.equal(server.requests.length, before);
    assert.deepEqual(again.candidateIds, ids);

    await deleteCandidate(db.pool, ids[1]!);
    const refilled = await runActivity(activityEnv(), sampleBatch, { runId: 'run-a', cycle: 1, model: 'smollm2-135m-instruct', firstIndex: 0, count: 3 });
    assert.equal(server.requests.length, before + 1);
    assert.equal(server.requests.at(-1)!.body.n, 1);
    // Sample 1 gets its own seed, never the one of sample 0, which is stored already.
    assert.equal(server.requests.at(-1)!.body.seed, server.requests[0]!.body.seed + 1);
    assert.equal(refilled.candidateIds.length, 3);
    assert.deepEqual([refilled.candidateIds[0], refilled.candidateIds[2]], [ids[0], ids[2]]);
  });

  test('the design-v2 reply is prefilled: continued by the model, stored whole, the conversation kept', async () => {
    await insertRun(db.pool, 'run-v2', { llm: { baseUrl: server.url, maxRetries: 1 }, prompt: { template: 'design-v2' } });
    const before = server.requests.length;
    await runActivity(activityEnv(), sampleBatch, { runId: 'run-v2', cycle: 1, model: 'smollm2-135m-instruct', firstIndex: 0, count: 2 });
    const request = server.requests[before]!.body;
    assert.deepEqual([request.continue_final_message, request.add_generation_prompt, request.stop], [true, false, ['\n```', '\nif __name__']], 'the reply ends where its code block closes');
    const reply = request.messages.at(-1);
    assert.equal(reply.role, 'assistant');
    assert.match(reply.content, /^```python\nimport torch[\s\S]*def supported_hyperparameters\(\):[\s\S]*num_classes = out_shape\[0\]\n$/);
    const [row] = await candidateRecords(db.pool, { runId: 'run-v2' });
    assert.ok(row!.completion!.startsWith(reply.content), 'the whole reply is stored, prefill first');
    assert.equal(row!.usage.prefilledChars, reply.content.length);
    assert.deepEqual((await promptByHash(db.pool, row!.prompt_hash!))!.messages!.map((m) => m.role), ['user', 'assistant']);
  });

  test('an unreachable endpoint fails the activity retryably, naming the URL; nothing is stored', async () => {
    const down = await startFakeServer(() => ({ status: 200 }));
    await down.close();
    await insertRun(db.pool, 'run-down', { llm: { baseUrl: down.url, maxRetries: 1 } });
    await assert.rejects(
      runActivity(activityEnv(), sampleBatch, { runId: 'run-down', cycle: 1, model: 'm', firstIndex: 0, count: 2 }),
      (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'LlmUnreachable');
        assert.equal(error.nonRetryable, false);
        assert.match(error.message, new RegExp(`cannot reach the LLM endpoint ${down.url}.*gave up after 2 attempts`));
        return true;
      },
    );
    assert.equal((await candidateRecords(db.pool, { runId: 'run-down' })).length, 0);
  });

  test('a wrong key fails the activity for good', async () => {
    const locked = await startFakeServer(() => apiError(401, 'bad key'));
    await insertRun(db.pool, 'run-key', { llm: { baseUrl: locked.url } });
    await assert.rejects(runActivity(activityEnv(), sampleBatch, { runId: 'run-key', cycle: 1, model: 'm', firstIndex: 0, count: 1 }), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure);
      assert.deepEqual([error.type, error.nonRetryable], ['LlmAuth', true]);
      assert.match(error.message, /refused no key \(/); // a fake server on another origin never gets the worker's key
      return true;
    });
    await locked.close();
  });

  test('an adapter the endpoint forgot (server restart) is loaded again, then sampling goes on', async () => {
    const loaded = new Set<string>();
    const forgetful = await startFakeServer(
      chatServer([], (req) => {
        if (req.path === '/v1/load_lora_adapter') {
          loaded.add(req.body.lora_name);
          return { status: 200, body: {} };
        }
        if (req.path === '/v1/models') return { status: 200, body: { data: ['base', ...loaded].map((id) => ({ id })) } };
        if (!loaded.has(req.body?.model)) return apiError(404, `The model \`${req.body?.model}\` does not exist.`);
        return undefined;
      }),
    );
    await insertRun(db.pool, 'run-restart', { llm: { baseUrl: forgetful.url } });
    const adapter = await upsertTrainingAdapter(db.pool, { runId: 'run-restart', cycle: 0, path: '/adapters/c0', baseModel: 'base', parentId: null, dataHash: 'x' });
    await markAdapterReady(db.pool, adapter.id, '/adapters/c0', {});
    await markAdapterPublished(db.pool, adapter.id, 'archloop-run-restart-cycle-0');
    const result = await runActivity(activityEnv(), sampleBatch, { runId: 'run-restart', cycle: 1, model: 'archloop-run-restart-cycle-0', firstIndex: 0, count: 2 });
    assert.equal(result.candidateIds.length, 2);
    const load = forgetful.requests.find((r) => r.path === '/v1/load_lora_adapter');
    assert.deepEqual(load?.body, { lora_name: 'archloop-run-restart-cycle-0', lora_path: '/adapters/c0' });
    await forgetful.close();
  });
});
