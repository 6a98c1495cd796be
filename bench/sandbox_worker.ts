/**
 * The worker's own per-candidate validate time (activity start to row stored) in a short
 * real run: the real workflows, activities and workers, the warm sandbox pool sized and
 * booted as `archloop worker` does it (startWorkerPool), synthetic data, and a scripted
 * OpenAI-compatible endpoint that answers every sampling request with held-out programs
 * (the runner tests' corpus: 6 valid, 2 invalid per 8) after `sampleDelayS` seconds.
 *
 *   ARCHLOOP_HOME=.archloop/bench bin/archloop services up --only postgres,temporal
 *   DATABASE_URL=… TEMPORAL_ADDRESS=… node --import tsx bench/sandbox_worker.ts [cycles] [samples] [sampleDelayS]
 *
 * Times come from the cycle workflows' histories: each validateCandidate's
 * ActivityTaskStarted to its ActivityTaskCompleted (the row is stored just before the
 * activity returns). A real sampler takes minutes per cycle, during which the pool's
 * zygote is long booted; sampleDelayS (default 20) stands for that.
 * Use a Temporal server of its own: its workers poll archloop's task queues.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../src/activities/index';
import { startRun } from '../src/client/temporal';
import { buildConfig } from '../src/core/config';
import { validatedRows } from '../src/db/candidates';
import { closePool } from '../src/db/pool';
import { PYTHON_SRC, pythonBin } from '../src/env';
import { settingsFromEnv } from '../src/sandbox/request';
import { closeSandboxPools, startWorkerPool } from '../src/sandbox/runner';
import { createWorkers } from '../src/workers/worker';
import { cycleWorkflowId } from '../src/workflows/definitions';
import { createTestDatabase } from '../test/helpers/db';
import { temporalAddressForTests, testClient, uniqueRunId, workflowBundle } from '../test/helpers/temporal';
import { completion } from '../test/llm/fake-server';

const CONTROL_CONCURRENCY = 8; // createWorkers' default for the control queue
const GPU_CONCURRENCY = 1;

function corpus(): string[] {
  const script = [
    'import json',
    'from tests.runner.corpus import VALID, INVALID_VALIDATE',
    "valid = [VALID[n] for n in ('simple', 'residual_add', 'concat', 'depthwise_separable', 'grouped_conv', 'attention')]",
    "print(json.dumps(valid + [INVALID_VALIDATE['shape'], INVALID_VALIDATE['forward']]))",
  ].join('\n');
  const out = execFileSync(pythonBin(), ['-c', script], { env: { ...process.env, PYTHONPATH: PYTHON_SRC }, cwd: path.join(PYTHON_SRC) });
  return JSON.parse(out.toString()) as string[];
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The median of the values present, interpolated between the middle two (Postgres' percentile_cont(0.5)); null when none. */
function median(values: ReadonlyArray<number | null | undefined>): number | null {
  const sorted = values.filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = (sorted.length - 1) / 2;
  return (sorted[Math.floor(middle)]! + sorted[Math.ceil(middle)]!) / 2;
}

function eventSeconds(time: unknown): number {
  const t = time as { seconds?: { toNumber?: () => number } | number; nanos?: number };
  const seconds = typeof t.seconds === 'number' ? t.seconds : (t.seconds?.toNumber?.() ?? 0);
  return seconds + (t.nanos ?? 0) / 1e9;
}

async function main(): Promise<void> {
  const cycles = Number(process.argv[2] ?? 3);
  const samples = Number(process.argv[3] ?? 8);
  const sampleDelayS = Number(process.argv[4] ?? 20);
  const llm = await scriptedEndpoint(corpus(), sampleDelayS);

  const db = await createTestDatabase();
  process.env.DATABASE_URL = db.url; // the real activities use the process-wide pool of DATABASE_URL
  const config = buildConfig('demo', {
    name: 'bench-sandbox-worker',
    cycles,
    dataset: { name: 'synthetic', syntheticTrainSize: 2048, syntheticTestSize: 512 },
    training: { batchSize: 32, timeLimitS: 120, threads: 1, device: 'cpu', maxTrainImages: 1024 },
    llm: { baseUrl: llm.url, model: 'bench-model' },
    sampling: { samplesPerCycle: samples, samplesPerActivity: samples },
    lora: { enabled: false, seedFineTune: false },
    orchestration: { maxAttempts: 2 },
  });
  const client = await testClient();
  const connection = await NativeConnection.connect({ address: temporalAddressForTests() });
  startWorkerPool({ validate: CONTROL_CONCURRENCY, train: GPU_CONCURRENCY }, settingsFromEnv());
  const workers = await createWorkers({ queue: 'all', connection, activities: createActivities(), workflowBundle: await workflowBundle() });
  const runId = uniqueRunId('bench-sandbox-worker');
  const load = [os.loadavg()[0]!];
  try {
    const t0 = performance.now();
    await Promise.all([
      (async () => {
        await startRun(client, config, runId);
        await client.workflow.getHandle(runId).result();
        workers.forEach((w) => w.shutdown());
      })(),
      ...workers.map((w) => w.run()),
    ]);
    load.push(os.loadavg()[0]!);
    const perCycle: Record<number, number[]> = {};
    for (let cycle = 1; cycle <= cycles; cycle++) {
      const events = (await client.workflow.getHandle(cycleWorkflowId(runId, cycle)).fetchHistory()).events ?? [];
      const scheduled = new Map<string, string>();
      const started = new Map<string, number>();
      for (const event of events) {
        const id = String(event.eventId);
        const attrs = event.activityTaskScheduledEventAttributes;
        if (attrs?.activityType?.name === 'validateCandidate') scheduled.set(id, 'validate');
        const start = event.activityTaskStartedEventAttributes;
        if (start && scheduled.has(String(start.scheduledEventId))) started.set(String(start.scheduledEventId), eventSeconds(event.eventTime));
        const done = event.activityTaskCompletedEventAttributes;
        if (done && started.has(String(done.scheduledEventId))) {
          (perCycle[cycle] ??= []).push(eventSeconds(event.eventTime) - started.get(String(done.scheduledEventId))!);
        }
      }
    }
    const all = Object.values(perCycle).flat();
    const stats = (values: number[]) => ({
      n: values.length,
      p50: +percentile(values, 50).toFixed(3),
      p90: +percentile(values, 90).toFixed(3),
      max: +Math.max(...values).toFixed(3),
    });
    const validated = await validatedRows(db.pool, runId);
    // Where a job's time goes, from the runner's own timings (medians over candidates).
    const phases = ['sandboxWaitS', 'startupS', 'validateS', 'sandboxS', 'totalS'];
    const cyclesValidated = [...new Set(validated.map((row) => row.cycle))];
    const timed = cyclesValidated.map((cycle) => {
      const own = validated.filter((row) => row.cycle === cycle);
      return { cycle, ...Object.fromEntries(phases.map((k) => [k, median(own.map((row) => row.timings[k]))])) } as Record<string, number | null>;
    });
    console.log(
      JSON.stringify(
        {
          machine: `${os.availableParallelism()} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
          load: load.map((l) => +l.toFixed(2)),
          cycles,
          samplesPerCycle: samples,
          sampleDelayS,
          runS: +((performance.now() - t0) / 1000).toFixed(1),
          validateActivityS: { all: stats(all), ...Object.fromEntries(Object.entries(perCycle).map(([c, v]) => [`cycle${c}`, stats(v)])) },
          candidates: { n: validated.length, valid: validated.filter((row) => row.valid).length },
          runnerMedians: Object.fromEntries(timed.map((row) => [`cycle${row.cycle}`, Object.fromEntries(phases.map((k) => [k, +Number(row[k]).toFixed(3)]))])),
        },
        null,
        2,
      ),
    );
  } finally {
    await closeSandboxPools();
    await connection.close();
    await client.connection.close();
    await closePool();
    await db.drop();
    await llm.close();
  }
}

/** An OpenAI-compatible chat endpoint that answers each request with the next programs, after delayS. */
async function scriptedEndpoint(programs: string[], delayS: number): Promise<{ url: string; close: () => Promise<void> }> {
  let next = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      const n = Number(body.n ?? 1);
      const texts = Array.from({ length: n }, () => `Here is the network.\n\n\`\`\`python\n${programs[next++ % programs.length]}\`\`\`\n`);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completion(texts)));
      }, delayS * 1000);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
