/**
 * Activity signatures, by task queue. Workflows import only these types; the
 * implementations live one stage per file in this folder and are registered by
 * src/workers. Every input and output is a schema in src/core/stages.ts.
 */
import type {
  CandidateRef,
  CycleMetrics,
  CycleRef,
  FineTuneInput,
  FineTuneResult,
  FinishRunInput,
  InfraFailureInput,
  NoveltyResult,
  PublishInput,
  PublishResult,
  RepairResult,
  SampleBatchInput,
  SampleBatchResult,
  SelectResult,
  StartCycleInput,
  StartRunInput,
  TrainResult,
  ValidateResult,
} from '../core/stages';

/** Run bookkeeping (control queue): rows in `runs` and `cycles`, metrics. */
export interface BookkeepingActivities {
  startRun(input: StartRunInput): Promise<void>;
  finishRun(input: FinishRunInput): Promise<void>;
  startCycle(input: StartCycleInput): Promise<void>;
  /** Computes the cycle's metrics from its candidate rows, stores and returns them. */
  finishCycle(input: CycleRef): Promise<CycleMetrics>;
  /** Marks a candidate `infra-failed` after one of its stage activities failed for good. */
  markInfraFailed(input: InfraFailureInput): Promise<void>;
}

/** Stages on the `archloop-control` queue: LLM calls, validation, novelty, DB. */
export interface ControlActivities {
  sampleBatch(input: SampleBatchInput): Promise<SampleBatchResult>;
  validateCandidate(input: CandidateRef): Promise<ValidateResult>;
  /** A further attempt at a failed candidate: a new candidate row, its parent the failed one. */
  repairCandidate(input: CandidateRef): Promise<RepairResult>;
  checkNovelty(input: CycleRef): Promise<NoveltyResult>;
  selectAndAdmit(input: CycleRef): Promise<SelectResult>;
  publishAdapter(input: PublishInput): Promise<PublishResult>;
  /** Validates the seed corpus at the run's shape and budget (once per run, before cycle 0). */
  checkSeedCorpus(input: { runId: string }): Promise<SeedCheckResult>;
  /** Checks that the endpoint can do what the run needs (n > 1, runtime LoRA loading). */
  checkEndpoint(input: { runId: string }): Promise<EndpointCheck>;
}

export interface SeedCheckResult {
  kept: number;
  checked: number;
  rejected: Record<string, number>;
}

export interface EndpointCheck {
  models: string[];
  n: boolean;
  loraApi: boolean;
}

/** Stages on the `archloop-gpu` queue: training candidates, LoRA fine-tuning. */
export interface GpuActivities {
  trainCandidate(input: CandidateRef): Promise<TrainResult>;
  fineTuneLora(input: FineTuneInput): Promise<FineTuneResult>;
}

export type AllActivities = BookkeepingActivities & ControlActivities & GpuActivities;
