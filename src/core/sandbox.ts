/**
 * The sandbox runner's JSON boundary (python/archloop/runner/protocol.py), mirrored in zod.
 * The runner writes JSON lines: progress events, then one result or one error event.
 * Results are parsed loosely on unknown keys (a newer runner may add fields) but strictly
 * on every field archloop stores or reads.
 */
import { z } from 'zod';
import { ContractConfig, DatasetConfig, TrainingConfig } from './config';
import { VALIDATION_FAILURES } from './repairable';

/** Every way a candidate can fail in the sandbox (docs/sandbox.md explains each). */
export const SandboxFailureClass = z.enum([
  ...VALIDATION_FAILURES,
  'train-error',
  'eval-error',
  'nan-loss',
  'low-accuracy',
  'timeout',
  'oom',
  'sandbox-violation',
  'crash',
]);
export type SandboxFailureClass = z.infer<typeof SandboxFailureClass>;

export const SandboxFailure = z.object({
  class: SandboxFailureClass,
  stage: z.string(),
  message: z.string(),
});
export type SandboxFailure = z.infer<typeof SandboxFailure>;

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export const GraphNode = z.object({
  op: z.string(),
  target: z.string(),
  attrs: z.record(z.string(), z.union([scalar, z.array(z.unknown())])),
  inputs: z.array(z.number().int().nonnegative()),
  shape: z.array(z.number().int()).nullable(),
  dtype: z.string().nullable(),
});
export const GraphIR = z.object({
  method: z.enum(['fx', 'jit']),
  nodes: z.array(GraphNode),
  output: z.array(z.number().int().nonnegative()),
});
export type GraphIR = z.infer<typeof GraphIR>;

export const SandboxMode = z.enum(['bwrap', 'none']);
export type SandboxMode = z.infer<typeof SandboxMode>;

/** The caps on a whole sandbox (python/archloop/runner/sandbox/resources.py) and what it used of them. */
export const CgroupInfo = z.object({
  version: z.enum(['v1', 'v2']),
  memoryMb: z.number().int(),
  pids: z.number().int(),
  cpuCores: z.number().nullable(),
  peakMb: z.number().int().nullable().default(null),
  oomKills: z.number().int().default(0),
  pidsRefused: z.number().int().default(0),
});
export type CgroupInfo = z.infer<typeof CgroupInfo>;

export const SandboxInfo = z.object({
  /** 'none': the job ran WITHOUT bubblewrap (ARCHLOOP_SANDBOX=none + ARCHLOOP_ALLOW_UNSAFE=1). */
  mode: SandboxMode,
  uid: z.number().int().nullable(),
  /** Which per-slot uid ran the job (root workers; null otherwise). */
  slot: z.number().int().nullable().default(null),
  seccomp: z.boolean().default(false),
  /** GPU device nodes bound into the sandbox. */
  gpus: z.array(z.string()).default([]),
  wallLimitS: z.number(),
  addressSpaceMb: z.number().int().nullable(),
  cpuS: z.number().int(),
  nproc: z.number().int(),
  nofile: z.number().int(),
  fsizeMb: z.number().int(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** How many candidates the zygote that forked this one's sandbox had been given before it (null: no zygote, unsafe mode). */
  zygoteJobs: z.number().int().nonnegative().nullable().default(null),
  /** The sandbox's cgroup (null: none usable here, and cgroupNote says why: rlimits only). */
  cgroup: CgroupInfo.nullable().default(null),
  cgroupNote: z.string().nullable().default(null),
});

export const SandboxLogs = z.object({
  stdout: z.string(),
  stderr: z.string(),
  truncatedBytes: z.number().int().nonnegative(),
});

const LossStats = z.object({
  steps: z.number().int().nonnegative(),
  first: z.number().nullable(),
  last: z.number().nullable(),
  mean: z.number().nullable(),
  nonFinite: z.number().int().nonnegative(),
});

const ResultBase = z.object({
  ok: z.boolean(),
  failure: SandboxFailure.nullable(),
  dataset: z.object({ name: z.string(), inputShape: z.array(z.number().int()), classes: z.number().int() }).nullable(),
  warnings: z.array(z.string()),
  /** Seconds per stage (importS, forwardS, trainS…), plus imagesPerS for training. */
  timings: z.record(z.string(), z.number()),
  sandbox: SandboxInfo.nullable(),
  logs: SandboxLogs,
  runnerVersion: z.string(),
  torchVersion: z.string().nullable(),
  /**
   * Fields whose values come from inside the candidate's own process (which can forge its
   * report): stored as the candidate's claim. Accuracy is never among them.
   */
  claimed: z.array(z.string()).default([]),
});

export const ValidateOutcome = ResultBase.extend({
  kind: z.literal('validate'),
  outputShape: z.array(z.number().int()).nullable(),
  params: z.number().int().nonnegative().nullable(),
  /** Forward FLOPs per image (torch.utils.flop_counter). */
  flops: z.number().nonnegative().nullable(),
  graph: GraphIR.nullable(),
  structuralHash: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
});
export type ValidateOutcome = z.infer<typeof ValidateOutcome>;

export const TrainOutcome = ResultBase.extend({
  kind: z.literal('train'),
  accuracy: z.number().min(0).max(1).nullable(),
  correct: z.number().int().nonnegative().nullable(),
  testSize: z.number().int().nonnegative().nullable(),
  trainImages: z.number().int().nonnegative().nullable(),
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  device: z.string().nullable(),
  bf16: z.boolean().nullable(),
  channelsLast: z.boolean().nullable(),
  threads: z.number().int().nullable(),
  seed: z.number().int(),
  loss: LossStats.nullable(),
  /** Parameters and forward FLOPs per image of the trained network, measured on its evaluation. */
  params: z.number().int().nonnegative().nullable().default(null),
  flops: z.number().nonnegative().nullable().default(null),
});
export type TrainOutcome = z.infer<typeof TrainOutcome>;

export const SandboxOutcome = z.discriminatedUnion('kind', [ValidateOutcome, TrainOutcome]);
export type SandboxOutcome = z.infer<typeof SandboxOutcome>;

export const ProgressEvent = z.object({
  event: z.literal('progress'),
  stage: z.string(),
  elapsedS: z.number(),
  images: z.number().int().optional(),
  totalImages: z.number().int().optional(),
  loss: z.number().optional(),
});
export type ProgressEvent = z.infer<typeof ProgressEvent>;

export const RunnerEvent = z.discriminatedUnion('event', [
  ProgressEvent,
  z.object({ event: z.literal('result'), result: SandboxOutcome }),
  /** The runner cannot do its job on this machine; retryable: it may pass on its own (every slot busy). */
  z.object({ event: z.literal('error'), message: z.string(), retryable: z.boolean().default(false) }),
]);
export type RunnerEvent = z.infer<typeof RunnerEvent>;

export const SandboxKind = z.enum(['validate', 'train']);
export type SandboxKind = z.infer<typeof SandboxKind>;

/** Worker-side sandbox settings (not part of the run config: they describe the machine). */
export const SandboxSettings = z.strictObject({
  mode: SandboxMode.default('bwrap'),
  auditHook: z.boolean().default(true),
  /** Concurrent sandboxes per machine, each with its own uid (root workers). */
  slots: z.number().int().positive().max(1000).optional(),
  nproc: z.number().int().positive().optional(),
  runtimeReserveMb: z.number().int().nonnegative().optional(),
  graceS: z.number().nonnegative().optional(),
  extraRoBinds: z.array(z.string()).optional(),
});
export type SandboxSettings = z.infer<typeof SandboxSettings>;

/** What the runner reads on stdin. */
export const SandboxRequest = z.strictObject({
  kind: SandboxKind,
  code: z.string(),
  dataset: DatasetConfig,
  contract: ContractConfig,
  training: TrainingConfig,
  sandbox: SandboxSettings,
});
export type SandboxRequest = z.infer<typeof SandboxRequest>;
