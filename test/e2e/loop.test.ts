/**
 * The whole loop through the real services: the embedded LLM server, the sandbox runner,
 * LoRA fine-tuning, novelty and selection, on synthetic data — 2 cycles × 3 candidates,
 * every stage real. The metrics table must be complete and agree with the candidate rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { createActivities } from '../../src/activities/index';
import { computeStoredCycleMetrics } from '../../src/activities/bookkeeping';
import { startRun } from '../../src/client/temporal';
import { buildConfig } from '../../src/core/config';
import { importLemur } from '../../src/corpus/lemur';
import { closePool } from '../../src/db/pool';
import { loadCycleMetrics } from '../../src/db/run-metrics';
import { embeddedModelDir, EMBEDDED_MODEL_NAME } from '../../src/services/llm';
import type { RunOutcome } from '../../src/workflows/designRun';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { buildLemurFixtureWheel } from '../helpers/lemur';
import { testClient, uniqueRunId, withWorkers } from '../helpers/temporal';

const llmUrl = process.env.ARCHLOOP_LLM_URL;
let db: TestDatabase;
let client: Client;
let previousDatabaseUrl: string | undefined;

before(async () => {
  db = await createTestDatabase();
  client = await testClient();
  // The real activities use the process-wide pool of DATABASE_URL: point it at this test's database.
  previousDatabaseUrl = process.env.DATABASE_URL;
  process.env.DATABASE_URL = db.url;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'archloop-e2e-'));
  await importLemur(db.pool, { wheel: buildLemurFixtureWheel(tmp) });
});

after(async () => {
  await closePool();
  process.env.DATABASE_URL = previousDatabaseUrl;
  await client.connection.close();
  await db.drop();
});

test('2 cycles × 3 candidates, every stage real', { skip: llmUrl ? false : 'needs ARCHLOOP_LLM_URL (scripts/test.sh starts the embedded server)' }, async () => {
  const config = buildConfig('demo', {
    name: 'e2e',
    cycles: 2,
    dataset: { name: 'synthetic', syntheticTrainSize: 512, syntheticTestSize: 256 },
    training: { batchSize: 32, timeLimitS: 120, threads: 1 },
    llm: { baseUrl: llmUrl, model: EMBEDDED_MODEL_NAME },
    sampling: { samplesPerCycle: 3, samplesPerActivity: 3, maxNewTokens: 384 },
    // One LoRA step per fine-tune: ~40 s on 2 CPU cores for the 135M model at 1024 tokens.
    lora: { baseModel: embeddedModelDir(), maxSteps: 1, maxSeqLen: 1024, maxPairs: 4, checkpointEvery: 1 },
    orchestration: { maxAttempts: 2 },
  });
  const runId = uniqueRunId('e2e');
  const outcome = await withWorkers(
    createActivities(),
    async () => {
      await startRun(client, config, runId);
      return (await client.workflow.getHandle(runId).result()) as RunOutcome;
    },
    2,
  );

  assert.equal(outcome.status, 'completed');
  assert.deepEqual(outcome.completed.map((c) => c.cycle), [0, 1, 2]);
  assert.notEqual(outcome.model, EMBEDDED_MODEL_NAME, 'the last cycle published an adapter');

  const stored = await loadCycleMetrics(db.pool, runId);
  assert.deepEqual(stored.map((m) => m.cycle), [1, 2], 'a metrics row per sampling cycle');
  for (const metrics of stored) {
    assert.equal(metrics.sampled, 3);
    assert.deepEqual(metrics, await computeStoredCycleMetrics(db.pool, runId, metrics.cycle), 'metrics = candidate rows');
  }
  const { rows } = await db.pool.query(
    `SELECT status, completion IS NOT NULL AS has_completion, prompt_hash IS NOT NULL AS has_prompt
       FROM candidates WHERE run_id = $1`,
    [runId],
  );
  assert.equal(rows.length, 6);
  for (const row of rows) {
    assert.ok(row.has_completion && row.has_prompt, 'raw completion and prompt stored');
    assert.notEqual(row.status, 'sampled', 'no candidate was left unjudged');
  }
  const adapters = await db.pool.query(`SELECT cycle, model_name FROM adapters WHERE run_id = $1 ORDER BY cycle`, [runId]);
  assert.deepEqual(adapters.rows.map((r) => r.cycle), [0, 1, 2]);
  assert.ok(adapters.rows.every((r) => r.model_name), 'each adapter was published');
});
