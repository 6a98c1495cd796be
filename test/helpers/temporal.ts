/** The real Temporal server of TEMPORAL_ADDRESS, a workflow bundle built once, mock workers. */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Runtime, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type pg from 'pg';
import type { QueueName } from '../../src/core/task-queues';
import { buildConfig, type RunConfig } from '../../src/core/config';
import { createWorkers } from '../../src/workers/worker';
import { createMockActivities, type MockOptions } from './mock-activities';

Runtime.install({ logger: new DefaultLogger('WARN') });

export function temporalAddressForTests(): string {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) throw new Error('tests need TEMPORAL_ADDRESS (a Temporal server; scripts/test.sh starts one)');
  return address;
}

export async function testClient(): Promise<Client> {
  const connection = await Connection.connect({ address: temporalAddressForTests() });
  return new Client({ connection });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: new DefaultLogger('WARN') });
  return bundle;
}

/** Runs `fn` while in-process workers with the given activities serve both queues. */
export async function withWorkers<T>(activities: Record<QueueName, object>, fn: () => Promise<T>, concurrency = 4): Promise<T> {
  const connection = await NativeConnection.connect({ address: temporalAddressForTests() });
  const workers = await createWorkers({
    queue: 'all',
    connection,
    activities,
    workflowBundle: await workflowBundle(),
    concurrency,
    shutdownGraceTime: '1s',
  });
  try {
    let result!: T;
    const [first, ...rest] = workers;
    await first!.runUntil(async () => {
      await Promise.all([
        (async () => {
          result = await fn();
        })().finally(() => rest.forEach((w) => w.shutdown())),
        ...rest.map((w) => w.run()),
      ]);
    });
    return result;
  } finally {
    await connection.close();
  }
}

/** Runs `fn` while in-process workers with mock compute activities serve both queues. */
export function withMockWorkers<T>(pool: pg.Pool, fn: () => Promise<T>, options: MockOptions = {}): Promise<T> {
  return withWorkers(createMockActivities(pool, options), fn);
}

export function uniqueRunId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A small config for orchestration tests: no seed fine-tune unless asked, a fine-tune after every cycle. */
export function smallConfig(overrides: Record<string, unknown> = {}): RunConfig {
  const section = (key: string) => (overrides[key] ?? {}) as Record<string, unknown>;
  return buildConfig('demo', {
    cycles: 2,
    ...overrides,
    // No baseline unless asked: the demo preset samples one in cycle 0.
    sampling: { samplesPerCycle: 6, samplesPerActivity: 3, baselineSamples: 0, ...section('sampling') },
    lora: { seedFineTune: false, fineTuneLastCycle: true, ...section('lora') },
    orchestration: { heartbeatTimeoutS: 5, maxAttempts: 3, ...section('orchestration') },
  });
}
