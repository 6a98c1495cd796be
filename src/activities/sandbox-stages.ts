/**
 * validateCandidate (control queue) and trainCandidate (gpu queue): the two sandbox stages,
 * one shape. Each runs the candidate's code through the sandbox runner (validate: the
 * contract, forward pass and budget; train: one epoch of the candidate's own
 * train_setup/learn, test accuracy scored by the runner) and stores the outcome in its row.
 * A failing candidate is a stored, classified result; only a broken machine (no runner, no
 * bwrap) fails the activity.
 */
import { log } from '@temporalio/activity';
import type pg from 'pg';
import { CandidateRef, type TrainResult, type ValidateResult } from '../core/stages';
import { loadCandidate, loadCandidateContext, storeStageResult, type CandidateRow, type StageResult } from '../db/candidates';
import { buildRequest, settingsFromEnv } from '../sandbox/request';
import { trainingRow, validationRow } from '../sandbox/rows';
import { runSandbox } from '../sandbox/runner';
import type { ControlActivities, GpuActivities } from './contract';
import { runInActivity } from './sandbox-run';

export interface SandboxStageDeps {
  pool: pg.Pool;
  /** Injected in tests that are not about the runner. */
  runner?: typeof runSandbox;
}

/** What each stage differs in: when it has nothing to run, how its outcome becomes a row, what it returns and logs. */
interface Stage<R> {
  kind: 'validate' | 'train';
  /** The stored answer when the row needs no run (already done by an earlier attempt, or nothing to run). */
  settled(candidate: CandidateRow): R | undefined;
  result(candidateId: number, stored: StageResult): R;
  /** Numbers worth a log line beside the outcome. */
  timings(stored: StageResult, startedMs: number): Record<string, number | undefined>;
}

function sandboxStage<R>(stage: Stage<R>, deps: SandboxStageDeps) {
  const { pool } = deps;
  return async (raw: CandidateRef): Promise<R> => {
    const started = performance.now();
    const { candidateId } = CandidateRef.parse(raw);
    const candidate = await loadCandidate(pool, candidateId);
    const settled = stage.settled(candidate);
    if (settled !== undefined) return settled;
    const { config } = await loadCandidateContext(pool, candidateId);
    const request = buildRequest(stage.kind, candidate.code!, config, settingsFromEnv());
    const outcome = await runInActivity(request, candidateId, deps.runner);
    let result: StageResult;
    if (stage.kind === 'validate' && outcome.kind === 'validate') result = { stage: 'validate', row: validationRow(outcome) };
    else if (stage.kind === 'train' && outcome.kind === 'train') result = { stage: 'train', row: trainingRow(outcome) };
    else throw new Error(`runner answered a ${outcome.kind} result to a ${stage.kind} request`);
    const stored = await storeStageResult(pool, candidateId, result);
    log.info(stage.kind === 'validate' ? 'candidate validated' : 'candidate trained', {
      candidateId,
      ...(result.stage === 'validate' ? { valid: result.row.valid } : { accuracy: result.row.accuracy }),
      failureClass: result.row.failureClass,
      ...stage.timings(result, started),
      stored,
    });
    return stage.result(candidateId, result);
  };
}

const validateStage: Stage<ValidateResult> = {
  kind: 'validate',
  settled: (c) =>
    // Already validated (a retry after the row was written) or nothing to validate.
    c.has_validation || c.status === 'extract-failed' || c.code === null
      ? { candidateId: c.id, valid: c.valid === true, failureClass: c.failure_class }
      : undefined,
  result: (candidateId, { row }) => ({ candidateId, valid: row.status === 'valid', failureClass: row.failureClass }),
  timings: (stored, startedMs) => ({
    totalS: stored.stage === 'validate' ? stored.row.timings.validate.totalS : undefined,
    // activity start to row stored (bench/RESULTS.md: the worker's per-candidate time)
    activityS: Math.round(performance.now() - startedMs) / 1000,
  }),
};

const trainStage: Stage<TrainResult> = {
  kind: 'train',
  settled: (c) => {
    if (c.has_training) return { candidateId: c.id, accuracy: c.accuracy, failureClass: c.failure_class };
    // Only valid candidates train; report why this one did not.
    if (c.status !== 'valid' || c.code === null) {
      return { candidateId: c.id, accuracy: null, failureClass: c.failure_class ?? `not-trainable:${c.status}` };
    }
    return undefined;
  },
  result: (candidateId, stored) => ({
    candidateId,
    accuracy: stored.stage === 'train' ? stored.row.accuracy : null,
    failureClass: stored.row.failureClass,
  }),
  timings: (stored) => (stored.stage === 'train' ? { trainS: stored.row.timings.train.trainS, imagesPerS: stored.row.timings.train.imagesPerS } : {}),
};

export function createValidateActivities(deps: SandboxStageDeps): Pick<ControlActivities, 'validateCandidate'> {
  return { validateCandidate: sandboxStage(validateStage, deps) };
}

export function createTrainActivities(deps: SandboxStageDeps): Pick<GpuActivities, 'trainCandidate'> {
  return { trainCandidate: sandboxStage(trainStage, deps) };
}
