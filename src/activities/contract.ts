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
  NoveltyResult,
  PublishInput,
  PublishResult,
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
}

/** Stages on the `archloop-control` queue: LLM calls, validation, novelty, DB. */
export interface ControlActivities {
  sampleBatch(input: SampleBatchInput): Promise<SampleBatchResult>;
  validateCandidate(input: CandidateRef): Promise<ValidateResult>;
  checkNovelty(input: CycleRef): Promise<NoveltyResult>;
  selectAndAdmit(input: CycleRef): Promise<SelectResult>;
  publishAdapter(input: PublishInput): Promise<PublishResult>;
}

/** Stages on the `archloop-gpu` queue: training candidates, LoRA fine-tuning. */
export interface GpuActivities {
  trainCandidate(input: CandidateRef): Promise<TrainResult>;
  fineTuneLora(input: FineTuneInput): Promise<FineTuneResult>;
}

export type AllActivities = BookkeepingActivities & ControlActivities & GpuActivities;

export const TASK_QUEUES = { control: 'archloop-control', gpu: 'archloop-gpu' } as const;
export type QueueName = keyof typeof TASK_QUEUES;
