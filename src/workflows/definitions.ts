/**
 * Signals, queries, updates and search attributes of the run and cycle workflows: the
 * names a client (the CLI, the Temporal CLI, the Web UI) uses to steer and read a run.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CycleSummary, RunStatus } from '../core/stages';

export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Finish the cycle in progress, then end the run. */
export const stopAfterCycleSignal = defineSignal('stopAfterCycle');

export interface RunProgress {
  runId: string;
  status: RunStatus;
  /** Cycle being worked on (0 = seed fine-tune), null between cycles. */
  currentCycle: number | null;
  /** What the run does now (the Temporal UI's current details), e.g. the checks before cycle 0. */
  details?: string;
  totalCycles: number;
  completed: CycleSummary[];
  model: string;
}
export const progressQuery = defineQuery<RunProgress>('progress');

/** Sets how many cycles remain after the one in progress; returns the new total. */
export const setRemainingCyclesUpdate = defineUpdate<number, [number]>('setRemainingCycles');

export type CycleStage =
  | 'starting'
  | 'sampling'
  | 'evaluating'
  | 'novelty'
  | 'selection'
  | 'metrics'
  | 'fine-tuning'
  | 'publishing'
  | 'done';

export interface CycleProgress {
  cycle: number;
  stage: CycleStage;
  target: number;
  sampled: number;
  validated: number;
  valid: number;
  trained: number;
  admitted: number;
  /** Further attempts made so far (repairs or resamples). */
  repairs: number;
  /** Samples valid at some attempt. */
  validAfterRepair: number;
}
export const cycleProgressQuery = defineQuery<CycleProgress>('cycleProgress');

/** Registered with the Temporal server by `archloop services up` (see src/services/temporal.ts). */
export const searchAttributes = {
  cycle: defineSearchAttributeKey('ArchloopCycle', SearchAttributeType.INT),
  bestAccuracy: defineSearchAttributeKey('ArchloopBestAccuracy', SearchAttributeType.DOUBLE),
  validRate: defineSearchAttributeKey('ArchloopValidRate', SearchAttributeType.DOUBLE),
  preset: defineSearchAttributeKey('ArchloopPreset', SearchAttributeType.KEYWORD),
};

export function cycleWorkflowId(runId: string, cycle: number): string {
  return `${runId}/cycle-${cycle}`;
}
