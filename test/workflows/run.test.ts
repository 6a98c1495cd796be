/**
 * designRun / designCycle against the real Temporal server, with mocked compute stages
 * and real bookkeeping in a fresh Postgres database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TASK_QUEUES } from '../../src/core/task-queues';
import { startRun } from '../../src/client/temporal';
import {
  cycleWorkflowId,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setRemainingCyclesUpdate,
  stopAfterCycleSignal,
} from '../../src/workflows/definitions';
import type { RunOutcome } from '../../src/workflows/designRun';
import { runAdapters } from '../../src/db/adapters';
import { candidateRecords } from '../../src/db/candidates';
import { runStatus } from '../../src/db/runs';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { mockValid } from '../helpers/mock-activities';
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

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('designRun', () => {
  test('N cycles run as N children with deterministic ids, rows and metrics complete', async () => {
    const config = smallConfig({ cycles: 3 });
    const runId = uniqueRunId('wf-cycles');
    const outcome = await withMockWorkers(db.pool, async () => {
      await startRun(client, config, runId);
      return client.workflow.getHandle(runId).result() as Promise<RunOutcome>;
    });
    assert.equal(outcome.status, 'completed');
    assert.deepEqual(outcome.completed.map((c) => c.cycle), [1, 2, 3]);
    const adapters = await runAdapters(db.pool, runId);
    assert.deepEqual(adapters.map((r) => r.cycle), [1, 2, 3], 'a fine-tune after every cycle, the last one included');
    for (const cycle of [1, 2, 3]) {
      const child = await client.workflow.getHandle(cycleWorkflowId(runId, cycle)).describe();
      assert.equal(child.type, 'designCycle');
      assert.equal(child.status.name, 'COMPLETED');
      assert.equal(child.parentExecution?.workflowId, runId);
    }
    await assert.rejects(client.workflow.getHandle(cycleWorkflowId(runId, 4)).describe());
    await assert.rejects(client.workflow.getHandle(cycleWorkflowId(runId, 0)).describe(), 'no seed cycle when disabled');

    const rows = await candidateRecords(db.pool, { runId });
    // 6 samples, plus one repair for each invalid one (the mock's repairs are valid).
    const invalid = [0, 1, 2, 3, 4, 5].filter((index) => !mockValid(index)).length;
    assert.deepEqual([1, 2, 3].map((cycle) => rows.filter((row) => row.cycle === cycle).length), [1, 2, 3].map(() => 6 + invalid));
    const metrics = outcome.completed[0]!.metrics!;
    assert.equal(metrics.sampled, 6);
    assert.equal(metrics.valid, 6 - invalid, 'first attempts, as the paper counts');
    assert.equal(metrics.validAfterRepair, 6);
    assert.equal(metrics.repairs, invalid);
    // Each cycle samples from the adapter the previous cycle published.
    assert.equal(outcome.completed[1]!.nextModel.startsWith('mock-adapter-'), true);
    assert.equal(await runStatus(db.pool, runId), 'completed');
  });

  test('the seed fine-tune runs as cycle 0 before sampling', async () => {
    const config = smallConfig({ cycles: 1, lora: { seedFineTune: true } });
    const runId = uniqueRunId('wf-seed');
    const outcome = await withMockWorkers(db.pool, async () => {
      await startRun(client, config, runId);
      return client.workflow.getHandle(runId).result() as Promise<RunOutcome>;
    });
    assert.deepEqual(outcome.completed.map((c) => c.cycle), [0, 1]);
    assert.equal(outcome.completed[0]!.metrics, null);
    const seedModel = outcome.completed[0]!.nextModel;
    const models = new Set((await candidateRecords(db.pool, { runId })).map((row) => row.model));
    assert.deepEqual([...models], [seedModel], 'cycle 1 samples from the seed adapter');
  });

  test('pause holds the run between cycles, resume continues, the update changes the cycle count', async () => {
    const config = smallConfig({ cycles: 2 });
    const runId = uniqueRunId('wf-pause');
    const outcome = await withMockWorkers(
      db.pool,
      async () => {
        await startRun(client, config, runId);
        const handle = client.workflow.getHandle(runId);
        await waitUntil('cycle 1 to start', async () => (await handle.query(progressQuery)).currentCycle === 1);
        await handle.signal(pauseSignal);
        await waitUntil('cycle 1 to finish', async () => (await handle.query(progressQuery)).completed.length >= 1);
        await new Promise((r) => setTimeout(r, 1500));
        const paused = await handle.query(progressQuery);
        assert.equal(paused.status, 'paused');
        assert.equal(paused.completed.length, 1, 'no new cycle starts while paused');
        assert.equal(paused.currentCycle, null);
        assert.equal(await handle.executeUpdate(setRemainingCyclesUpdate, { args: [3] }), 4);
        await assert.rejects(handle.executeUpdate(setRemainingCyclesUpdate, { args: [-1] }), (error: Error & { cause?: Error }) => {
          assert.match(String(error.cause?.message), /integer in 0\.\.10000/);
          return true;
        });
        await handle.signal(resumeSignal);
        return handle.result() as Promise<RunOutcome>;
      },
      { trainMs: 200 },
    );
    assert.deepEqual(outcome.completed.map((c) => c.cycle), [1, 2, 3, 4]);
  });

  test('stop-after-cycle finishes the cycle in progress and ends the run', async () => {
    const config = smallConfig({ cycles: 5 });
    const runId = uniqueRunId('wf-stop');
    const outcome = await withMockWorkers(
      db.pool,
      async () => {
        await startRun(client, config, runId);
        const handle = client.workflow.getHandle(runId);
        await waitUntil('cycle 1 to start', async () => (await handle.query(progressQuery)).currentCycle === 1);
        await handle.signal(stopAfterCycleSignal);
        return handle.result() as Promise<RunOutcome>;
      },
      { trainMs: 300 },
    );
    assert.equal(outcome.status, 'stopped');
    assert.deepEqual(outcome.completed.map((c) => c.cycle), [1]);
    const child = await client.workflow.getHandle(cycleWorkflowId(runId, 1)).describe();
    assert.equal(child.status.name, 'COMPLETED', 'the cycle in progress completed');
  });

  test('lora.fineTuneLastCycle off: no fine-tune after the last cycle, unless the run is extended, which fine-tunes on it first', async () => {
    const adapterCycles = async (runId: string) =>
      (await runAdapters(db.pool, runId)).map((r) => r.cycle);

    const ended = uniqueRunId('wf-lastft');
    const outcome = await withMockWorkers(db.pool, async () => {
      await startRun(client, smallConfig({ cycles: 2, lora: { fineTuneLastCycle: false } }), ended);
      return client.workflow.getHandle(ended).result() as Promise<RunOutcome>;
    });
    assert.deepEqual(outcome.completed.map((c) => c.cycle), [1, 2]);
    assert.deepEqual(await adapterCycles(ended), [1], 'the fine-tune after cycle 1 only');

    const extended = uniqueRunId('wf-lastft-ext');
    const longer = await withMockWorkers(
      db.pool,
      async () => {
        await startRun(client, smallConfig({ cycles: 1, lora: { fineTuneLastCycle: false } }), extended);
        const handle = client.workflow.getHandle(extended);
        await waitUntil('cycle 1 to start', async () => (await handle.query(progressQuery)).currentCycle === 1);
        // Cycle 1 started as the last one, so it skips its fine-tune; the run owes it before cycle 2.
        assert.equal(await handle.executeUpdate(setRemainingCyclesUpdate, { args: [1] }), 2);
        return handle.result() as Promise<RunOutcome>;
      },
      { trainMs: 300 },
    );
    assert.deepEqual(longer.completed.map((c) => c.cycle), [1, 2]);
    assert.deepEqual(await adapterCycles(extended), [1], 'owed after cycle 1; none after the new last cycle');
    const models = new Set((await candidateRecords(db.pool, { runId: extended, cycle: 2 })).map((row) => row.model));
    const adapter = (await runAdapters(db.pool, extended)).find((a) => a.cycle === 1)!;
    assert.deepEqual([...models], [`mock-adapter-${adapter.id}`], 'cycle 2 samples from the owed fine-tune');
  });

  test('the adapter gate: a new adapter judged worse is not published, and the next cycle samples from the model serving', async () => {
    const runId = uniqueRunId('wf-gate');
    const outcome = await withMockWorkers(
      db.pool,
      async () => {
        await startRun(client, smallConfig({ cycles: 3, lora: { gate: { samples: 8 } } }), runId);
        return client.workflow.getHandle(runId).result() as Promise<RunOutcome>;
      },
      { gateRejects: [2] },
    );
    const adapters = await runAdapters(db.pool, runId);
    assert.deepEqual(adapters.map((a) => a.cycle), [1, 2, 3], 'every cycle fine-tunes');
    const modelOf = async (cycle: number) => [...new Set((await candidateRecords(db.pool, { runId, cycle })).map((row) => row.model))];
    const first = adapters.find((a) => a.cycle === 1)!;
    assert.deepEqual(await modelOf(2), [`mock-adapter-${first.id}`]);
    assert.deepEqual(await modelOf(3), [`mock-adapter-${first.id}`], "cycle 2's adapter was kept out: cycle 3 samples from cycle 1's");
    assert.equal(outcome.completed[2]!.nextModel, `mock-adapter-${adapters.find((a) => a.cycle === 3)!.id}`);
    const history = await client.workflow.getHandle(cycleWorkflowId(runId, 2)).fetchHistory();
    const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
    assert.ok(scheduled.includes('gateAdapter') && !scheduled.includes('publishAdapter'), scheduled.join(', '));
  });

  test('a bad config fails the run at once, non-retryably, naming the field', async () => {
    const runId = uniqueRunId('wf-badconfig');
    const bad = { ...smallConfig(), sampling: { ...smallConfig().sampling, topP: 7 } };
    const error = await withMockWorkers(db.pool, async () => {
      const handle = await client.workflow.start('designRun', {
        taskQueue: TASK_QUEUES.control,
        workflowId: runId,
        args: [{ config: bad }],
      });
      return handle.result().then(
        () => assert.fail('the run should fail'),
        (e: unknown) => e,
      );
    });
    assert.ok(error instanceof WorkflowFailedError);
    const cause = error.cause;
    assert.ok(cause instanceof ApplicationFailure);
    assert.equal(cause.type, 'InvalidConfig');
    assert.equal(cause.nonRetryable, true);
    assert.match(cause.message, /sampling\.topP/);
    assert.equal(await runStatus(db.pool, runId), undefined, 'nothing was recorded for the invalid run');
  });
});
