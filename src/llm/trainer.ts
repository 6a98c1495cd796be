/**
 * Drives the Python LoRA trainer (`python -m archloop.lora --job JOB.json`): the job
 * file it reads, the JSON lines it prints (progress, done, error), and the process itself.
 * Re-running the same job after a kill resumes from outputDir/checkpoints. The trainer
 * locks outputDir for its lifetime and dies with the process that started it (its
 * parent-death signal), so an orphaned trainer never races its own retry.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { RunConfig } from '../core/config';
import { PYTHON_SRC, pythonBin } from '../env';
import { writeAtomic } from '../files';

export const TrainerJob = z.strictObject({
  baseModel: z.string().min(1),
  pairsFile: z.string().min(1),
  outputDir: z.string().min(1),
  previousAdapter: z.string().min(1).nullable(),
  r: z.number().int().positive(),
  alpha: z.number().int().positive(),
  dropout: z.number().min(0).max(1),
  targetModules: z.array(z.string().min(1)).min(1),
  lr: z.number().positive(),
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  maxSeqLen: z.number().int().positive(),
  checkpointEvery: z.number().int().positive(),
  bf16: z.boolean(),
  load4bit: z.boolean(),
  seed: z.number().int().nonnegative(),
  /** 0 = no cap. */
  maxSteps: z.number().int().nonnegative(),
});
export type TrainerJob = z.infer<typeof TrainerJob>;

/**
 * The trainer job of a fine-tune. The seed fine-tune runs lora.epochs over its pairs (at most
 * lora.seedMaxSteps steps); a fine-tune after a cycle runs once over its file, which already
 * holds each admission lora.passes times (finetune-pairs.ts).
 */
export function trainerJob(
  config: RunConfig,
  files: { baseModel: string; pairsFile: string; outputDir: string; previousAdapter: string | null },
  seed = false,
): TrainerJob {
  const { lora } = config;
  return TrainerJob.parse({
    ...files,
    r: lora.r,
    alpha: lora.alpha,
    dropout: lora.dropout,
    targetModules: lora.targetModules,
    lr: lora.lr,
    epochs: seed ? lora.epochs : 1,
    batchSize: lora.batchSize,
    maxSeqLen: lora.maxSeqLen,
    checkpointEvery: lora.checkpointEvery,
    bf16: lora.bf16,
    load4bit: lora.load4bit,
    seed: lora.seed,
    maxSteps: seed && lora.seedMaxSteps > 0 ? lora.seedMaxSteps : lora.maxSteps,
  });
}

/** The job file the trainer reads (rewritten whole, so a reader never sees half of it). */
export function writeTrainerJob(file: string, job: TrainerJob): void {
  writeAtomic(file, `${JSON.stringify(job, null, 2)}\n`);
}


export const TrainerErrorClass = z.enum(['empty-corpus', 'corrupt-checkpoint', 'missing-base-model', 'bad-job', 'output-dir-locked']);
export type TrainerErrorClass = z.infer<typeof TrainerErrorClass>;

const ProgressEvent = z.object({
  event: z.literal('progress'),
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().nonnegative(),
  loss: z.number().nullable(),
});
const DoneEvent = z.object({
  event: z.literal('done'),
  adapterDir: z.string().min(1),
  steps: z.number().int().nonnegative(),
  finalLoss: z.number().nullable(),
  manifest: z.record(z.string(), z.unknown()),
});
const ErrorEvent = z.object({ event: z.literal('error'), class: TrainerErrorClass, message: z.string() });
const TrainerEvent = z.discriminatedUnion('event', [ProgressEvent, DoneEvent, ErrorEvent]);

export type ProgressEvent = z.infer<typeof ProgressEvent>;
export type DoneEvent = z.infer<typeof DoneEvent>;

/** The trainer reported a classified failure (exit 2 with an error event). */
export class TrainerError extends Error {
  override name = 'TrainerError';
  constructor(
    readonly errorClass: TrainerErrorClass,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Another trainer holds the output dir (an earlier attempt still running, e.g. on a worker
 * whose activity timed out): not a failure of the job, so a later retry can succeed.
 */
export class TrainerBusy extends Error {
  override name = 'TrainerBusy';
}

/** The trainer died without saying why (killed, crashed): retrying resumes from its checkpoint. */
export class TrainerCrash extends Error {
  override name = 'TrainerCrash';
}

/**
 * Parses one stdout line: a trainer event, or undefined for anything else (libraries
 * print to stdout too). A line that claims to be an event but does not fit is an error.
 */
export function parseTrainerLine(line: string): z.infer<typeof TrainerEvent> | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || !('event' in value)) return undefined;
  const known = ['progress', 'done', 'error'];
  if (!known.includes(String((value as { event: unknown }).event))) return undefined;
  return TrainerEvent.parse(value);
}

export interface RunTrainerOptions {
  onProgress?: (progress: ProgressEvent) => void;
  onOutput?: (line: string) => void;
  signal?: AbortSignal;
  /** Extra environment (e.g. thread counts). */
  env?: NodeJS.ProcessEnv;
}

export function trainerCommand(jobFile: string): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const pythonPath = [PYTHON_SRC, process.env.PYTHONPATH].filter(Boolean).join(':');
  return {
    command: pythonBin(),
    args: ['-m', 'archloop.lora', '--job', jobFile],
    // The trainer checks it still has this parent after arming its parent-death signal.
    env: { ...process.env, PYTHONPATH: pythonPath, PYTHONUNBUFFERED: '1', ARCHLOOP_PARENT_PID: String(process.pid) },
  };
}

export async function runTrainer(jobFile: string, options: RunTrainerOptions = {}): Promise<DoneEvent> {
  const { command, args, env } = trainerCommand(jobFile);
  const child = spawn(command, args, { env: { ...env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderrTail = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderrTail = (stderrTail + chunk).slice(-4000)));
  const onAbort = () => {
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });

  let done: DoneEvent | undefined;
  let failure: TrainerError | TrainerBusy | undefined;
  let badLine: Error | undefined;
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      let event;
      try {
        event = parseTrainerLine(line);
      } catch (error) {
        badLine ??= new Error(`the trainer printed a malformed event: ${line.slice(0, 300)} (${(error as Error).message})`);
        continue;
      }
      if (!event) options.onOutput?.(line);
      else if (event.event === 'progress') options.onProgress?.(event);
      else if (event.event === 'done') done = event;
      else failure = event.class === 'output-dir-locked' ? new TrainerBusy(event.message) : new TrainerError(event.class, event.message);
    }
    const { code, signal } = await exited;
    if (failure) throw failure;
    if (badLine) throw badLine;
    if (code === 0 && done) return done;
    const how = signal ? `was killed by ${signal}` : code === 0 ? 'exited without a done event' : `exited with status ${code}`;
    throw new TrainerCrash(`the LoRA trainer ${how}: ${stderrTail.trim().split('\n').slice(-5).join(' | ') || '(no stderr)'}`);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
