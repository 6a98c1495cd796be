/**
 * The warm path's client. One `python -m archloop.runner serve` per process (a worker, or
 * one CLI call) runs every sandbox job of that process through a pool of zygotes: sandboxed
 * interpreters that have imported torch once and fork a fresh, nested sandbox per candidate
 * (python/archloop/runner/warm.py, zygote.py; docs/sandbox.md). Jobs are multiplexed on the
 * server's stdin/stdout as JSON lines tagged with a job id.
 *
 * What the server prints is read as untrusted bytes, as from the one-shot runner
 * (interpret.ts): anything that is not a result becomes the candidate's classified
 * failure; only the runner's own `error` event, or a server that died without answering,
 * is a SandboxInfraError. The server dies with this process (ARCHLOOP_PARENT_PID), and
 * its zygotes with it (bwrap --die-with-parent).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { PYTHON_SRC, pythonBin, stateDir } from '../env';
import type { RunConfig } from '../core/config';
import { ProgressEvent, type SandboxKind, type SandboxOutcome, type SandboxRequest, type SandboxSettings } from '../core/sandbox';
import { SandboxInfraError } from './errors';
import { interpretRun } from './interpret';
import { LineSplitter } from './lines';
import { outerTimeoutS } from './request';

/**
 * Passed through to the runner when set: proxies, the allotted GPUs, the unsafe-mode consent,
 * and where (or whether) it makes its sandboxes' cgroups (docs/sandbox.md, "Caps on the whole sandbox").
 */
const PASSED_ENV = [
  'ARCHLOOP_DATASETS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'CUDA_VISIBLE_DEVICES', 'ARCHLOOP_ALLOW_UNSAFE',
  'ARCHLOOP_CGROUP', 'ARCHLOOP_CGROUP_PARENT',
];

/** The runner's environment: only what it needs (the sandboxed side gets even less). */
export function runnerEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env, parentPid = process.pid): Record<string, string> {
  const out: Record<string, string> = {
    PATH: env.PATH ?? '/usr/bin:/bin',
    PYTHONPATH: PYTHON_SRC,
    ARCHLOOP_HOME: stateDir(),
    ARCHLOOP_PARENT_PID: String(parentPid),
    LANG: 'C.UTF-8',
  };
  for (const key of PASSED_ENV) {
    const value = env[key];
    if (value !== undefined) out[key] = value;
  }
  return { ...out, ...extra };
}

export interface RunOptions {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Overrides the outer timeout (seconds), counted from the job's start in its sandbox. */
  timeoutS?: number;
  /** The longest a job may wait for its sandbox (seconds; default QUEUE_TIMEOUT_S). */
  queueTimeoutS?: number;
}

/**
 * The runner's progress stage while a job waits for its sandbox (a zygote, a slot uid, the
 * dataset cache): python/archloop/runner/progress.py QueueBeat, every few seconds. It keeps
 * the activity heartbeating, and the job's own clock starts only with the next stage.
 */
export const QUEUED_STAGE = 'queued';
/** Waiting longer than this for a sandbox is a retryable infrastructure failure. */
export const QUEUE_TIMEOUT_S = 3600;

/**
 * How many jobs of a plan (kind + GPUs) run at once, and whether zygotes stay booted. Root
 * workers run them all in one zygote (each on its own slot uid); others one zygote per job.
 */
export const PoolSizing = z.strictObject({
  validateJobs: z.number().int().positive(),
  trainJobs: z.number().int().positive(),
  /** Keep the zygotes booted while idle (a worker), or boot only for jobs (the CLI). */
  stock: z.boolean(),
  /** Zygotes importing torch at once. */
  maxBooting: z.number().int().positive(),
  idleS: z.number().positive().default(900),
});
export type PoolSizing = z.infer<typeof PoolSizing>;

export interface SizingInput {
  cores: number;
  /** Concurrent validate activities of the worker (or files of a CLI call). */
  validateConcurrency: number;
  /** Concurrent train activities (the gpu queue: one per device). */
  trainConcurrency: number;
  stock: boolean;
  /** Cores to leave to what runs beside the pool (the LLM server, training): 1 for a worker, 0 for the CLI. */
  reservedCores: number;
  /** Memory the zygotes may take (MiB); each holds ~ZYGOTE_MB (without root, one zygote per job). */
  memoryMb: number;
}

/** What one idle zygote holds (torch imported, warmed up): RSS measured in bench/RESULTS.md, rounded up. */
export const ZYGOTE_MB = 600;

/**
 * Pool sizing (pure). Validation is CPU-bound, so more candidates at once than free cores
 * only queue on the CPU: min(concurrency, cores − reserved), at least 1, within the memory
 * budget. Training is bounded by the gpu queue's concurrency.
 */
export function poolSizing(input: SizingInput): PoolSizing {
  const free = Math.max(1, input.cores - input.reservedCores);
  const byMemory = Math.max(1, Math.floor(input.memoryMb / ZYGOTE_MB));
  const validateJobs = Math.max(1, Math.min(input.validateConcurrency, free, byMemory));
  const trainJobs = Math.max(1, Math.min(input.trainConcurrency, byMemory));
  return PoolSizing.parse({ validateJobs, trainJobs, stock: input.stock, maxBooting: Math.min(free, 2) });
}

/** The machine's cores and a quarter of its memory, for poolSizing. */
export function machine(): { cores: number; memoryMb: number } {
  return { cores: os.availableParallelism(), memoryMb: Math.floor(os.totalmem() / 2 ** 20 / 4) };
}

const JOBS_ENV = /^validate=(\d+),train=(\d+)$/;

/** ARCHLOOP_SANDBOX_JOBS=validate=N,train=M overrides the job counts (ops and benchmarks). */
export function sizingFromEnv(sizing: PoolSizing, env: NodeJS.ProcessEnv = process.env): PoolSizing {
  const raw = env.ARCHLOOP_SANDBOX_JOBS;
  if (!raw) return sizing;
  const match = JOBS_ENV.exec(raw);
  if (!match) throw new Error(`ARCHLOOP_SANDBOX_JOBS must look like validate=2,train=1, got "${raw}"`);
  return PoolSizing.parse({ ...sizing, validateJobs: Number(match[1]), trainJobs: Number(match[2]) });
}

function sizingArgs(sizing: PoolSizing): string[] {
  return [
    '--validate-jobs', String(sizing.validateJobs),
    '--train-jobs', String(sizing.trainJobs),
    '--max-booting', String(sizing.maxBooting),
    '--idle-s', String(sizing.idleS),
    ...(sizing.stock ? ['--stock'] : []),
  ];
}

/** A result line can hold a 50k-node graph (~10 MB); far beyond is not a result. */
const MAX_LINE_CHARS = 32 * 1024 * 1024;
const MAX_JOB_CHARS = 64 * 1024 * 1024;
/** After a cancel, how long the server gets to confirm before it is restarted. */
const CANCEL_GRACE_MS = 15_000;

const Tagged = z.object({ id: z.string().optional(), event: z.string() }).passthrough();

interface Pending {
  kind: SandboxKind;
  lines: string[];
  chars: number;
  overflow?: string;
  options: RunOptions;
  resolve: (outcome: SandboxOutcome) => void;
  reject: (error: unknown) => void;
  /** While queued: the queue limit; once started in its sandbox: the run's own limit. */
  timer: NodeJS.Timeout;
  /** Seconds the job may run once started (the outer timeout). */
  runS: number;
  started?: boolean;
  cancelled?: NodeJS.Timeout;
  onAbort?: () => void;
}

export interface PoolOptions {
  sizing: PoolSizing;
  python?: string;
  /** Extra environment for the server (e.g. ARCHLOOP_DATASETS in tests). */
  env?: Record<string, string>;
}

export class SandboxPool {
  private child?: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private stderrTail = '';
  private keepAlive?: NodeJS.Timeout;

  constructor(private readonly options: PoolOptions) {}

  get python(): string {
    return this.options.python ?? pythonBin();
  }

  /** The server's pid while it runs (logs, tests). */
  get serverPid(): number | undefined {
    return this.child?.pid;
  }

  /** Runs one job; resolves with its outcome (a failing candidate is an outcome too). */
  run(request: SandboxRequest, options: RunOptions = {}): Promise<SandboxOutcome> {
    return new Promise<SandboxOutcome>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new SandboxInfraError('sandbox run cancelled', true));
        return;
      }
      let child: ChildProcessWithoutNullStreams;
      try {
        child = this.server();
      } catch (error) {
        reject(error);
        return;
      }
      const id = String(++this.nextId);
      const queueS = options.queueTimeoutS ?? QUEUE_TIMEOUT_S;
      const job: Pending = {
        kind: request.kind,
        lines: [],
        chars: 0,
        options,
        resolve,
        reject,
        runS: options.timeoutS ?? outerTimeoutS(request),
        timer: setTimeout(() => this.cancel(id, new SandboxInfraError(`no sandbox for this job within ${queueS} s; gave up`, true)), queueS * 1000),
      };
      if (options.signal) {
        job.onAbort = () => this.cancel(id, new SandboxInfraError('sandbox run cancelled', true));
        options.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.pending.set(id, job);
      this.keepAlive ??= setInterval(() => undefined, 60_000);
      child.stdin.write(`${JSON.stringify({ op: 'run', id, request })}\n`);
    });
  }

  /**
   * Jobs of this kind are coming: the pool boots a zygote for them now (a worker's pool
   * then keeps its stock). Zygotes hold no dataset, so only the kind, the sandbox settings
   * and (train) the device choose one.
   */
  prewarm(kind: SandboxKind, sandbox: SandboxSettings, device: RunConfig['training']['device'] = 'auto'): void {
    try {
      this.server().stdin.write(`${JSON.stringify({ op: 'prewarm', kind, sandbox, device })}\n`);
    } catch {
      /* a hint: the first job reports what is wrong */
    }
  }

  /** Ends the server (its zygotes go with it); pending jobs fail as retryable. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.stdin.end();
    const timer = setTimeout(() => this.kill(child), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private server(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const python = this.python;
    if (!existsSync(python)) {
      throw new SandboxInfraError(`Python runner not found at ${python} (run scripts/setup.sh or set ARCHLOOP_PYTHON)`);
    }
    const child = spawn(python, ['-m', 'archloop.runner', 'serve', ...sizingArgs(this.options.sizing)], {
      cwd: PYTHON_SRC,
      env: runnerEnv(this.options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group: a restart kills the server and everything it started
    });
    this.child = child;
    this.stderrTail = '';
    // An idle pool must not keep a CLI process alive; pending jobs hold a timer that does.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as Array<{ unref?: () => void }>) stream.unref?.();
    const splitter = new LineSplitter((line) => this.onLine(line), MAX_LINE_CHARS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      try {
        splitter.push(chunk);
      } catch (error) {
        this.failAll(child, `server output unreadable: ${error instanceof Error ? error.message : String(error)}`);
        this.kill(child);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-8192);
    });
    child.stdin.on('error', () => undefined); // a dead server: 'close' reports it
    child.on('error', (error) => this.failAll(child, `server failed: ${error.message}`));
    child.on('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.failAll(child, `runner exited (${signal ?? `code ${code}`}) without a result`, { code, signal });
    });
    return child;
  }

  private onLine(line: string): void {
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch {
      return; // not a tagged line: nothing to route it to
    }
    const tagged = Tagged.safeParse(payload);
    if (!tagged.success || tagged.data.id === undefined) return;
    const { id, event } = tagged.data;
    const terminal = event === 'result' || event === 'error';
    if (terminal && this.unconfirmed.has(id)) {
      clearTimeout(this.unconfirmed.get(id));
      this.unconfirmed.delete(id);
    }
    const job = this.pending.get(id);
    if (!job) return; // a job we gave up on
    job.chars += line.length;
    if (job.chars > MAX_JOB_CHARS) job.overflow ??= `more than ${MAX_JOB_CHARS} characters of output`;
    else job.lines.push(line);
    if (event === 'progress') {
      const progress = line.length <= 4096 ? ProgressEvent.safeParse(payload) : undefined;
      if (progress?.success && progress.data.stage !== QUEUED_STAGE) this.start(id, job);
      if (progress?.success) job.options.onProgress?.(progress.data);
      return;
    }
    if (terminal) this.settle(id, { code: 0, signal: null });
  }

  /** The job left the queue: its own limit counts from now, not from when it was submitted. */
  private start(id: string, job: Pending): void {
    if (job.started) return;
    job.started = true;
    clearTimeout(job.timer);
    job.timer = setTimeout(() => this.cancel(id, new SandboxInfraError(`runner did not finish within ${job.runS} s; killed`, true)), job.runS * 1000);
  }

  /** Interprets what a job printed, as for the one-shot runner. */
  private settle(id: string, exit: { code: number | null; signal: string | null }): void {
    const job = this.pending.get(id);
    if (!job) return;
    this.forget(id, job);
    const verdict = interpretRun({ kind: job.kind, lines: job.lines, exit, stderrTail: this.stderrTail, overflow: job.overflow });
    if (verdict.type === 'infra') job.reject(new SandboxInfraError(verdict.message, verdict.retryable));
    else job.resolve(verdict.outcome);
  }

  private cancel(id: string, error: SandboxInfraError): void {
    const job = this.pending.get(id);
    if (!job) return;
    this.forget(id, job);
    job.reject(error);
    const child = this.child;
    if (!child) return;
    child.stdin.write(`${JSON.stringify({ op: 'cancel', id })}\n`);
    // The server answers a cancel at once; one that does not is wedged: restart it.
    const watch = setTimeout(() => {
      this.unconfirmed.delete(id);
      if (this.child === child) this.kill(child);
    }, CANCEL_GRACE_MS);
    watch.unref();
    this.unconfirmed.set(id, watch);
  }

  /** Cancelled jobs whose end the server has not reported yet. */
  private readonly unconfirmed = new Map<string, NodeJS.Timeout>();

  private forget(id: string, job: Pending): void {
    clearTimeout(job.timer);
    if (job.onAbort) job.options.signal?.removeEventListener('abort', job.onAbort);
    this.pending.delete(id);
    if (this.pending.size === 0 && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
  }

  private failAll(child: ChildProcessWithoutNullStreams, why: string, exit?: { code: number | null; signal: string | null }): void {
    if (this.child === child) this.child = undefined;
    for (const id of [...this.pending.keys()]) {
      if (exit) this.settle(id, exit);
      else {
        const job = this.pending.get(id)!;
        this.forget(id, job);
        job.reject(new SandboxInfraError(`${why}; stderr: ${this.stderrTail.slice(-2000)}`, true));
      }
    }
  }

  private kill(child: ChildProcessWithoutNullStreams): void {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
