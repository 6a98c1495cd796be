/** `archloop worker` and `archloop migrate`. */
import type { Command } from 'commander';
import { migrateUp } from '../db/migrate';
import { databaseUrl } from '../env';
// The Temporal worker (seconds to load) only when a worker runs: other commands start faster.
import type { WorkerQueue } from '../workers/worker';

export function register(program: Command): void {
  program
    .command('worker')
    .description('run a worker for the control queue (LLM, validation, novelty, DB), the gpu queue (training, LoRA) or both')
    .option('--queue <queue>', 'control | gpu | all', 'all')
    .option('--concurrency <n>', 'concurrent activities per queue (default: control 8, gpu 1)')
    .action(async (opts: { queue: string; concurrency?: string }) => {
      if (!['control', 'gpu', 'all'].includes(opts.queue)) {
        throw new Error(`--queue must be control, gpu or all, got "${opts.queue}"`);
      }
      const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
        throw new Error(`--concurrency must be a positive integer, got "${opts.concurrency}"`);
      }
      const { runWorkers } = require('../workers/worker') as typeof import('../workers/worker');
      await runWorkers({ queue: opts.queue as WorkerQueue, concurrency }, (line) => console.log(line));
    });

  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async () => {
      const applied = await migrateUp(databaseUrl());
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database schema is up to date');
    });
}
