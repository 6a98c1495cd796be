/**
 * A run id names one run: starting another run under it is refused (Temporal's id reuse
 * policy, and the runs table when Temporal no longer knows the id), unless the user resumes
 * it; resuming keeps the stored config. Real Temporal, real bookkeeping, mocked compute.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createBookkeepingActivities } from '../../src/activities/bookkeeping';
import { InvalidRunIdError, RunIdTakenError, startRun } from '../../src/client/temporal';
import { REPO_ROOT } from '../../src/env';
import type { RunOutcome } from '../../src/workflows/designRun';
import { candidateRecords } from '../../src/db/candidates';
import { insertRunRecord, storedConfig } from '../../src/db/runs';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { smallConfig, testClient, uniqueRunId, withMockWorkers } from '../helpers/temporal';

let db: TestDatabase;
let client: Client;
before(async () => {
  db = await createTestDatabase();
  client = await testClient();
});
after(async () => {
  await client.connection.close();
  await db.drop();
});

const config = smallConfig({ cycles: 1, sampling: { samplesPerCycle: 2, samplesPerActivity: 2 } });

async function nonRetryableFailure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
    assert.equal(error.nonRetryable, true);
    return error;
  }
  assert.fail('expected a failure');
}

describe('startRun activity (the runs table)', () => {
  const env = () => new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const activities = () => createBookkeepingActivities({ pool: db.pool });

  test('the same config again is a retry; another config under the id fails for good', async () => {
    const runId = uniqueRunId('table');
    await env().run(activities().startRun, { runId, config });
    await env().run(activities().startRun, { runId, config: JSON.parse(JSON.stringify(config)) });
    const other = { ...config, cycles: 5 };
    const failure = await nonRetryableFailure(env().run(activities().startRun, { runId, config: other }));
    assert.equal(failure.type, 'RunIdConflict');
    assert.match(failure.message, new RegExp(`run id ${runId} already holds a run with another config`));
    assert.equal((await storedConfig(db.pool, runId) as { cycles: number }).cycles, 1, 'the stored run is untouched');
  });

  test('a config stored before llm.apiKeyEnv was removed still matches', async () => {
    const runId = uniqueRunId('legacy');
    const legacy = { ...config, llm: { ...config.llm, apiKeyEnv: 'OPENAI_API_KEY' } };
    await insertRunRecord(db.pool, { id: runId, name: 'x', preset: 'demo', config: legacy });
    await env().run(activities().startRun, { runId, config });
  });

  test('a new run with bad cross-field settings or an unusable id fails for good', async () => {
    const bad = { ...config, orchestration: { ...config.orchestration, trainTimeoutS: 10 } };
    const invalid = await nonRetryableFailure(env().run(activities().startRun, { runId: uniqueRunId('bad'), config: bad }));
    assert.equal(invalid.type, 'InvalidConfig');
    assert.match(invalid.message, /orchestration\.trainTimeoutS: 10 s is shorter than/);
    const long = await nonRetryableFailure(env().run(activities().startRun, { runId: 'r'.repeat(190), config }));
    assert.equal(long.type, 'InvalidRunId');
  });
});

describe('starting a run under a used id (Temporal)', () => {
  test('refused while it runs and after it completed; a terminated run resumes with its own config', async () => {
    const runId = uniqueRunId('reuse');
    await withMockWorkers(db.pool, async () => {
      await startRun(client, config, runId);
      await assert.rejects(startRun(client, { ...config, cycles: 3 }, runId), (error: Error) => {
        assert.ok(error instanceof RunIdTakenError);
        assert.match(error.message, new RegExp(`run id ${runId} is taken \\(a running run\\): \`archloop run --resume ${runId}\` follows it`));
        return true;
      });
      assert.equal(((await client.workflow.getHandle(runId).result()) as RunOutcome).status, 'completed');
      await assert.rejects(startRun(client, config, runId), /is taken \(a completed run\): it is finished/);
      await assert.rejects(startRun(client, config, runId, { resume: true }), RunIdTakenError, 'a completed run is not started again');

      const stopped = uniqueRunId('terminated');
      await startRun(client, config, stopped);
      await client.workflow.getHandle(stopped).terminate('test');
      await assert.rejects(startRun(client, config, stopped), /a terminated run\): `archloop run --resume/);
      await startRun(client, config, stopped, { resume: true });
      assert.equal(((await client.workflow.getHandle(stopped).result()) as RunOutcome).status, 'completed');
    });
    await assert.rejects(startRun(client, config, 'x'.repeat(177)), InvalidRunIdError);
  });

  test('an id Temporal no longer knows but the runs table holds fails the workflow with RunIdConflict', async () => {
    const runId = uniqueRunId('forgotten');
    await insertRunRecord(db.pool, { id: runId, name: 'old', preset: 'demo', config: { ...config, cycles: 7 } });
    await withMockWorkers(db.pool, async () => {
      await startRun(client, config, runId);
      await assert.rejects(client.workflow.getHandle(runId).result(), (error: unknown) => {
        assert.ok(error instanceof WorkflowFailedError);
        const cause = error.cause?.cause;
        assert.ok(cause instanceof ApplicationFailure);
        assert.equal(cause.type, 'RunIdConflict');
        return true;
      });
    });
    assert.equal((await candidateRecords(db.pool, { runId })).length, 0, 'nothing ran under the old run’s id');
  });
});

test('archloop run --id refuses an id in the database and points at --resume', () => {
  const runId = uniqueRunId('cli');
  const result = (args: string[]) =>
    spawnSync(path.join(REPO_ROOT, 'bin', 'archloop'), args, { encoding: 'utf8', env: { ...process.env, DATABASE_URL: db.url }, timeout: 60_000 });
  return insertRunRecord(db.pool, { id: runId, name: 'old', preset: 'demo', config })
    .then(() => {
      const r = result(['run', '--id', runId]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), `archloop: run id ${runId} is taken (a running run in the database): \`archloop run --resume ${runId}\` continues it; pick another --id for a new run`);
      assert.match(result(['run', '--resume', runId, '--cycles', '3']).stderr, /--resume keeps the run’s stored config and id/);
    });
});
