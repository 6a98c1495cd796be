/**
 * Orchestration overhead: a paper-shaped run (22 cycles × 150 candidates) with instant
 * mocked stages on the real Temporal dev server and Postgres, so all that is measured is
 * workflows, activities, history and bookkeeping.
 *   DATABASE_URL=... TEMPORAL_ADDRESS=... node --import tsx bench/orchestration.ts [cycles] [samples]
 * Point it at a Temporal server of its own (e.g. `ARCHLOOP_HOME=.archloop/bench archloop
 * services up --only postgres,temporal`): its workers poll archloop's task queues, so on a
 * server where a real run is going they would take that run's tasks (and vice versa).
 */
import os from 'node:os';
import { NativeConnection } from '@temporalio/worker';
import { startRun } from '../src/client/temporal';
import { buildConfig } from '../src/core/config';
import { outcomeRows } from '../src/db/candidates';
import { createWorkers } from '../src/workers/worker';
import { cycleWorkflowId } from '../src/workflows/definitions';
import { createTestDatabase } from '../test/helpers/db';
import { createMockActivities } from '../test/helpers/mock-activities';
import { temporalAddressForTests, testClient, uniqueRunId, workflowBundle } from '../test/helpers/temporal';

async function main(): Promise<void> {
  const cycles = Number(process.argv[2] ?? 22);
  const samples = Number(process.argv[3] ?? 150);
  const config = buildConfig('paper', { cycles, sampling: { samplesPerCycle: samples } });
  const db = await createTestDatabase();
  const client = await testClient();
  const connection = await NativeConnection.connect({ address: temporalAddressForTests() });
  const workers = await createWorkers({
    queue: 'all',
    connection,
    workflowBundle: await workflowBundle(),
    activities: createMockActivities(db.pool),
    concurrency: 64,
  });
  const runId = uniqueRunId('bench-orchestration');
  let seconds = 0;
  try {
    await Promise.all([
      (async () => {
        const t0 = performance.now();
        await startRun(client, config, runId);
        await client.workflow.getHandle(runId).result();
        seconds = (performance.now() - t0) / 1000;
        workers.forEach((w) => w.shutdown());
      })(),
      ...workers.map((w) => w.run()),
    ]);
    const events: number[] = [];
    for (let cycle = config.lora.seedFineTune ? 0 : 1; cycle <= cycles; cycle++) {
      const history = await client.workflow.getHandle(cycleWorkflowId(runId, cycle)).fetchHistory();
      events.push(history.events?.length ?? 0);
    }
    const parent = (await client.workflow.getHandle(runId).fetchHistory()).events?.length ?? 0;
    const candidates = await outcomeRows(db.pool, runId);
    // Stage executions per candidate: validate (all) + train (valid ones); sampling is batched.
    const stageRuns = candidates.length + candidates.filter((c) => c.valid).length;
    const sampled = events.slice(config.lora.seedFineTune ? 1 : 0);
    console.log(
      JSON.stringify(
        {
          machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
          cycles,
          samplesPerCycle: samples,
          candidates: candidates.length,
          totalSeconds: Number(seconds.toFixed(1)),
          msPerCandidateStage: Number(((seconds * 1000) / stageRuns).toFixed(2)),
          historyEventsPerCycleChild: { max: Math.max(...sampled), min: Math.min(...sampled) },
          historyEventsParent: parent,
        },
        null,
        2,
      ),
    );
  } finally {
    await connection.close();
    await client.connection.close();
    await db.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
