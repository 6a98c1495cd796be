/**
 * Stage schemas: what the workflows pass to the stage activities and get back. Inputs and
 * outputs are row ids and small summaries, never programs or tensors (those live in
 * Postgres and in the artifact directory). Activities parse their input with these schemas;
 * their signatures are read from the implementations (src/activities/index.ts).
 */
import { z } from 'zod';

export const RunId = z.string().min(1).max(200);

/** A run-level stage's input (the seed check, the endpoint check). */
export const RunRef = z.strictObject({ runId: RunId });
export type RunRef = z.infer<typeof RunRef>;

/** Identifies one cycle of one run. Cycle 0 is the seed fine-tune on the LEMUR pairs. */
export const CycleRef = z.strictObject({
  runId: RunId,
  cycle: z.number().int().nonnegative(),
});
export type CycleRef = z.infer<typeof CycleRef>;

export const StartRunInput = z.strictObject({
  runId: RunId,
  /** The validated config, as JSON. */
  config: z.unknown(),
});
export type StartRunInput = z.infer<typeof StartRunInput>;

export const RunStatus = z.enum(['running', 'paused', 'stopping', 'completed', 'stopped', 'failed']);
export type RunStatus = z.infer<typeof RunStatus>;

export const FinishRunInput = z.strictObject({ runId: RunId, status: RunStatus });
export type FinishRunInput = z.infer<typeof FinishRunInput>;

export const StartCycleInput = CycleRef.extend({ model: z.string().min(1) });
export type StartCycleInput = z.infer<typeof StartCycleInput>;

/** One sampling activity: samples [firstIndex, firstIndex + count) of the cycle. */
export const SampleBatchInput = CycleRef.extend({
  model: z.string().min(1),
  firstIndex: z.number().int().nonnegative(),
  count: z.number().int().positive(),
  /** Render the prompt as this cycle would (cycle 0's baseline uses cycle 1's prompt). */
  promptCycle: z.number().int().positive().optional(),
});
export type SampleBatchInput = z.infer<typeof SampleBatchInput>;

export const SampleBatchResult = z.strictObject({
  /** Candidate row ids, one per sample index, in index order. */
  candidateIds: z.array(z.number().int().positive()),
  /** How many of them yielded code (the rest carry an extraction failure class). */
  extracted: z.number().int().nonnegative(),
});
export type SampleBatchResult = z.infer<typeof SampleBatchResult>;

export const CandidateRef = z.strictObject({ candidateId: z.number().int().positive() });
export type CandidateRef = z.infer<typeof CandidateRef>;

/** One more attempt at a failed candidate (repair from errors, or a resample). */
export const RepairResult = z.strictObject({
  /** The new attempt's row (it may itself have failed extraction: validation says so). */
  candidateId: z.number().int().positive(),
  attempt: z.number().int().positive(),
});
export type RepairResult = z.infer<typeof RepairResult>;

/** A candidate whose stage activity failed for good (its retries exhausted): the cycle goes on without it. */
export const InfraFailureInput = z.strictObject({
  candidateId: z.number().int().positive(),
  stage: z.enum(['validate', 'train', 'repair']),
  message: z.string(),
});
export type InfraFailureInput = z.infer<typeof InfraFailureInput>;

export const ValidateResult = z.strictObject({
  candidateId: z.number().int().positive(),
  valid: z.boolean(),
  failureClass: z.string().nullable(),
});
export type ValidateResult = z.infer<typeof ValidateResult>;

export const TrainResult = z.strictObject({
  candidateId: z.number().int().positive(),
  accuracy: z.number().min(0).max(1).nullable(),
  failureClass: z.string().nullable(),
});
export type TrainResult = z.infer<typeof TrainResult>;

export const NoveltyResult = z.strictObject({
  checked: z.number().int().nonnegative(),
  novel: z.number().int().nonnegative(),
  duplicates: z.number().int().nonnegative(),
});
export type NoveltyResult = z.infer<typeof NoveltyResult>;

export const SelectResult = z.strictObject({
  admitted: z.number().int().nonnegative(),
  threshold: z.number().min(0).max(1),
  fallbackUsed: z.boolean(),
});
export type SelectResult = z.infer<typeof SelectResult>;

/** The seed corpus checked at the run's shape and budget (once per run, before cycle 0). */
export const SeedCheckResult = z.strictObject({
  kept: z.number().int().nonnegative(),
  checked: z.number().int().nonnegative(),
  /** Rejected entries by failure class. */
  rejected: z.record(z.string(), z.number().int().nonnegative()),
});
export type SeedCheckResult = z.infer<typeof SeedCheckResult>;

/** What the LLM endpoint can do for the run (once per run, before cycle 0). */
export const EndpointCheck = z.strictObject({
  models: z.array(z.string()),
  /** Several choices per request. */
  n: z.boolean(),
  /** Runtime LoRA loading. */
  loraApi: z.boolean(),
});
export type EndpointCheck = z.infer<typeof EndpointCheck>;

/** The paper's per-cycle numbers plus what a user needs to debug a cycle. */
export const CycleMetrics = z.strictObject({
  cycle: z.number().int().nonnegative(),
  /** First attempts (the paper's samples). */
  sampled: z.number().int().nonnegative(),
  /** Valid at the first attempt, as the paper counts. */
  valid: z.number().int().nonnegative(),
  validRate: z.number().min(0).max(1),
  validRateLow: z.number().min(0).max(1),
  validRateHigh: z.number().min(0).max(1),
  /** Samples valid at any attempt (repair from errors, or resampling). */
  validAfterRepair: z.number().int().nonnegative().default(0),
  validAfterRepairRate: z.number().min(0).max(1).default(0),
  validAfterRepairLow: z.number().min(0).max(1).default(0),
  validAfterRepairHigh: z.number().min(0).max(1).default(0),
  /** Further attempts made (each one LLM call and one validation). */
  repairs: z.number().int().nonnegative().default(0),
  /** Candidates whose activity failed for good (infrastructure, not the program). */
  infraFailed: z.number().int().nonnegative().default(0),
  trained: z.number().int().nonnegative(),
  bestAccuracy: z.number().min(0).max(1).nullable(),
  meanAccuracy: z.number().min(0).max(1).nullable(),
  shareAbove40: z.number().min(0).max(1).nullable(),
  admitted: z.number().int().nonnegative(),
  totalTrainPrompts: z.number().int().nonnegative(),
  failureClasses: z.record(z.string(), z.number().int().nonnegative()),
});
export type CycleMetrics = z.infer<typeof CycleMetrics>;

export const FineTuneInput = CycleRef.extend({
  /** Adapter of the previous cycle to continue from, or null to start from the base model. */
  previousAdapterId: z.number().int().positive().nullable(),
});
export type FineTuneInput = z.infer<typeof FineTuneInput>;

export const FineTuneResult = z.strictObject({
  adapterId: z.number().int().positive(),
  steps: z.number().int().nonnegative(),
  finalLoss: z.number().nullable(),
  pairs: z.number().int().nonnegative(),
});
export type FineTuneResult = z.infer<typeof FineTuneResult>;

export const GateInput = CycleRef.extend({
  adapterId: z.number().int().positive(),
  /** The model the run samples now (the base model or the adapter published before). */
  servingModel: z.string().min(1),
});
export type GateInput = z.infer<typeof GateInput>;

export const GateResult = z.strictObject({
  /** publish: the new adapter is not worse (or the gate could not tell); keep-serving: it is worse. */
  decision: z.enum(['publish', 'keep-serving']),
  /** False when the sample could not decide (too small, the endpoint down): then it never blocks. */
  measured: z.boolean(),
  reason: z.string(),
});
export type GateResult = z.infer<typeof GateResult>;

export const PublishInput = z.strictObject({ adapterId: z.number().int().positive() });
export type PublishInput = z.infer<typeof PublishInput>;

export const PublishResult = z.strictObject({
  /** The model name the serving endpoint now answers to (used by the next cycle). */
  model: z.string().min(1),
});
export type PublishResult = z.infer<typeof PublishResult>;

/** What a cycle child returns to the run workflow. */
export const CycleSummary = z.strictObject({
  cycle: z.number().int().nonnegative(),
  metrics: CycleMetrics.nullable(),
  /** Model (base or adapter) to sample the next cycle from. */
  nextModel: z.string().min(1),
  adapterId: z.number().int().positive().nullable(),
});
export type CycleSummary = z.infer<typeof CycleSummary>;
