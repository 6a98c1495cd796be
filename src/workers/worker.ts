/**
 * `archloop worker --queue control|gpu|all`: Temporal workers for archloop's two task
 * queues. The control worker also runs the workflows. Any number of workers of each kind
 * may join the same cluster; SIGINT/SIGTERM drain them gracefully.
 */
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { TASK_QUEUES, type QueueName } from '../core/task-queues';
import { createActivities } from '../activities/index';
import { migrateUp } from '../db/migrate';
import { databaseUrl, temporalAddress, temporalNamespace } from '../env';
import { settingsFromEnv } from '../sandbox/request';
import { startWorkerPool } from '../sandbox/runner';

export type WorkerQueue = QueueName | 'all';

export interface WorkerSettings {
  queue: WorkerQueue;
  /** Concurrent activities per worker (the gpu default is 1: one training job per device). */
  concurrency?: number;
  /** Activities to register; by default the real ones (src/activities/index.ts). */
  activities?: Record<QueueName, object>;
  /** A prebuilt workflow bundle (tests build it once); by default built from src/workflows. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  connection?: NativeConnection;
  /** How long running activities get to finish after SIGINT/SIGTERM. */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
}

function queuesOf(queue: WorkerQueue): QueueName[] {
  return queue === 'all' ? ['control', 'gpu'] : [queue];
}

export async function createWorkers(settings: WorkerSettings): Promise<Worker[]> {
  const connection = settings.connection ?? (await NativeConnection.connect({ address: temporalAddress() }));
  const activities = settings.activities ?? createActivities();
  return Promise.all(
    queuesOf(settings.queue).map((name) =>
      Worker.create({
        connection,
        namespace: temporalNamespace(),
        taskQueue: TASK_QUEUES[name],
        activities: activities[name],
        // Workflows (run and cycle) live on the control queue only.
        ...(name === 'control'
          ? settings.workflowBundle
            ? { workflowBundle: settings.workflowBundle }
            : { workflowsPath: require.resolve('../workflows') }
          : {}),
        maxConcurrentActivityTaskExecutions: settings.concurrency ?? (name === 'gpu' ? 1 : 8),
        shutdownGraceTime: settings.shutdownGraceTime ?? '30s',
      }),
    ),
  );
}

/** Applies pending migrations, then runs the workers until a shutdown signal. */
export async function runWorkers(settings: WorkerSettings, log: (line: string) => void): Promise<void> {
  // Refuses ARCHLOOP_SANDBOX=none without ARCHLOOP_ALLOW_UNSAFE=1; says so loudly with it.
  if (settingsFromEnv().mode === 'none') {
    Runtime.instance().logger.error('UNSAFE: this worker runs candidate programs WITHOUT a sandbox (ARCHLOOP_SANDBOX=none)', {
      event: 'sandbox.unsafe',
      consequence: 'no containment; accuracies can be forged; every row it writes has sandbox.mode "none"',
    });
  }
  const applied = await migrateUp(databaseUrl());
  if (applied.length) log(`applied migrations: ${applied.join(', ')}`);
  // The warm sandbox pool (src/sandbox/pool.ts): sized from what this worker runs at once, booted now.
  const queues = queuesOf(settings.queue);
  startWorkerPool(
    {
      validate: queues.includes('control') ? (settings.concurrency ?? 8) : 0,
      train: queues.includes('gpu') ? (settings.concurrency ?? 1) : 0,
    },
    settingsFromEnv(),
  );
  const workers = await createWorkers(settings);
  log(
    `worker ready on ${workers.map((w) => w.options.taskQueue).join(' + ')} at ${temporalAddress()} ` +
      `(namespace ${temporalNamespace()}); Ctrl-C drains and stops`,
  );
  await Promise.all(workers.map((worker) => worker.run()));
}
