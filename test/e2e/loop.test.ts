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
import { profileOf } from '../../src/corpus/checks';
import { runAdapters } from '../../src/db/adapters';
import { candidateRecords } from '../../src/db/candidates';
import { checkSummary } from '../../src/db/corpus';
import { closePool } from '../../src/db/pool';
import { loadCycleMetrics } from '../../src/db/runs';
import { embeddedModelName } from '../../src/services/llm';
import type { RunOutcome } from '../../src/workflows/designRun';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { buildLemurFixtureWheel } from '../helpers/lemur';
import { testClient, uniqueRunId, withWorkers } from '../helpers/temporal';

const llmUrl = process.env.ARCHLOOP_LLM_URL;
// The model scripts/test.sh serves (a small one: speed matters here, design quality does not).
const model = embeddedModelName();
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
    llm: { baseUrl: llmUrl, model },
    sampling: { samplesPerCycle: 3, samplesPerActivity: 3, maxNewTokens: 384, repairAttempts: 1, baselineSamples: 2 },
    // One LoRA step per fine-tune: ~40 s on 2 CPU cores for the 135M model at 1024 tokens.
    // Every stage real: the fine-tune after the last cycle too, which the demo preset skips.
    lora: { baseModel: model, maxSteps: 1, seedMaxSteps: 1, maxSeqLen: 1024, maxPairs: 4, checkpointEvery: 1, fineTuneLastCycle: true },
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
  assert.notEqual(outcome.model, model, 'the last cycle published an adapter');

  const stored = await loadCycleMetrics(db.pool, runId);
  assert.deepEqual(stored.map((m) => m.cycle), [0, 1, 2], 'a metrics row per sampling cycle (cycle 0: the baseline)');
  for (const metrics of stored) {
    assert.equal(metrics.sampled, metrics.cycle === 0 ? 2 : 3);
    assert.deepEqual(metrics, await computeStoredCycleMetrics(db.pool, runId, metrics.cycle), 'metrics = candidate rows');
  }
  const rows = await candidateRecords(db.pool, { runId });
  assert.equal(rows.filter((row) => row.attempt === 0).length, 2 + 6, 'the baseline of 2, then 2 cycles × 3');
  assert.ok(rows.every((row) => row.cycle > 0 || row.attempt === 0), 'the baseline is first attempts only');
  for (const row of rows) {
    assert.ok(row.completion !== null && row.prompt_hash !== null, 'raw completion and prompt stored');
    assert.notEqual(row.status, 'sampled', 'no candidate was left unjudged');
    assert.equal(row.parent_id === null, row.attempt === 0, 'each repair names the attempt it repairs');
  }
  // A 135M model rarely writes a valid program: its failures that a repair may fix got one.
  const repairable = rows.filter((row) => row.cycle > 0 && row.attempt === 0 && ['syntax', 'contract', 'import', 'instantiate', 'forward', 'no-code', 'truncated'].includes(row.failure_class ?? ''));
  assert.ok(rows.filter((row) => row.attempt === 1).length >= repairable.length);
  assert.ok((await checkSummary(db.pool, profileOf(config))).checked > 0, 'the seed corpus was checked at the run\'s shape before cycle 0');
  const adapters = await runAdapters(db.pool, runId);
  assert.deepEqual(adapters.map((r) => r.cycle), [0, 1, 2]);
  assert.ok(adapters.every((r) => r.model_name), 'each adapter was published');
});
