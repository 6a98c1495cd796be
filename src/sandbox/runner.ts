/**
 * runSandbox: every sandbox job of this process — the worker's validate and train
 * activities, `archloop validate|train` — goes through one warm pool (pool.ts): a
 * `python -m archloop.runner serve` whose zygotes have imported torch and fork a fresh,
 * nested sandbox per candidate. A worker sizes the pool from its concurrency and the
 * machine (configureSandboxPool); otherwise it boots zygotes only for waiting jobs.
 */
import { machine, poolSizing, SandboxPool, sizingFromEnv, type PoolSizing, type RunOptions as PoolRunOptions } from './pool';
import type { SandboxOutcome, SandboxRequest, SandboxSettings } from '../core/sandbox';

export { runnerEnv } from './pool';

export interface RunOptions extends PoolRunOptions {
  /** Another interpreter (tests); such jobs get a pool of their own. */
  python?: string;
  /** Extra environment for the runner (e.g. ARCHLOOP_DATASETS in tests); likewise its own pool. */
  env?: Record<string, string>;
}

let configured: PoolSizing | undefined;
const pools = new Map<string, SandboxPool>();

/** The pool a process gets unless it says otherwise: zygotes only for waiting jobs, one per core at most. */
export function onDemandSizing(concurrency = machine().cores): PoolSizing {
  return poolSizing({ ...machine(), validateConcurrency: concurrency, trainConcurrency: 1, stock: false, reservedCores: 0 });
}

/**
 * A worker's pool: zygotes kept booted, one core left to what runs beside it (the LLM
 * server, training), sized from the activities it runs at once (0: it does not serve that queue).
 */
export function workerSizing(concurrency: { validate: number; train: number }): PoolSizing {
  return poolSizing({
    ...machine(),
    validateConcurrency: Math.max(1, concurrency.validate),
    trainConcurrency: Math.max(1, concurrency.train),
    stock: true,
    reservedCores: 1,
  });
}

/**
 * Sizes this process's pool (before its first job): a worker passes its concurrency and
 * keeps stock; the CLI passes its file count. ARCHLOOP_SANDBOX_JOBS overrides the counts.
 */
export function configureSandboxPool(sizing: PoolSizing): void {
  configured = sizingFromEnv(sizing);
}

/**
 * A worker's pool, sized from what it runs at once, with zygotes booted at start for the
 * queues it serves (they hold no dataset, so no run config is needed).
 */
export function startWorkerPool(concurrency: { validate: number; train: number }, settings: SandboxSettings): void {
  configureSandboxPool(workerSizing(concurrency));
  if (settings.mode === 'none') return;
  if (concurrency.validate > 0) sandboxPool().prewarm('validate', settings);
  if (concurrency.train > 0) sandboxPool().prewarm('train', settings);
}

/** The pool for these options (one per interpreter and environment). */
export function sandboxPool(options: Pick<RunOptions, 'python' | 'env'> = {}): SandboxPool {
  const key = JSON.stringify([options.python ?? null, options.env ?? null]);
  let pool = pools.get(key);
  if (!pool) {
    pool = new SandboxPool({ sizing: configured ?? sizingFromEnv(onDemandSizing()), python: options.python, env: options.env });
    pools.set(key, pool);
  }
  return pool;
}

export function runSandbox(request: SandboxRequest, options: RunOptions = {}): Promise<SandboxOutcome> {
  return sandboxPool(options).run(request, options);
}

/** Ends every pool's server (and its zygotes). */
export async function closeSandboxPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((pool) => pool.close()));
}
