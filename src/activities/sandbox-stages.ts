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
import type { SandboxOutcome } from '../core/sandbox';
import { CandidateRef, type TrainResult, type ValidateResult } from '../core/stages';
import { loadCandidate, loadCandidateContext, storeStageResult, type CandidateRow, type StageResult } from '../db/candidates';
import { buildRequest, settingsFromEnv } from '../sandbox/request';
import { trainingRow, validationRow } from '../sandbox/rows';
import { runSandbox } from '../sandbox/runner';
import { runInActivity } from './sandbox-run';

export interface SandboxStageDeps {
  pool: pg.Pool;
  /** Injected in tests that are not about the runner. */
  runner?: typeof runSandbox;
}

type ValidateStored = Extract<StageResult, { stage: 'validate' }>;
type TrainStored = Extract<StageResult, { stage: 'train' }>;

/** What each stage differs in: when it has nothing to run, how its outcome becomes a row, what it returns and logs. */
interface Stage<S extends StageResult, R> {
  kind: S['stage'];
  /** The stored answer when the row needs no run (already done by an earlier attempt, or nothing to run). */
  settled(candidate: CandidateRow): R | undefined;
  /** The runner's outcome as the row to store (an outcome of the other kind is a runner bug). */
  stored(outcome: SandboxOutcome): S;
  result(candidateId: number, row: S['row']): R;
  /** The log line of a stored outcome: its message and the numbers worth logging beside it. */
  logged: string;
  logFields(row: S['row'], startedMs: number): Record<string, unknown>;
}

function sandboxStage<S extends StageResult, R>(stage: Stage<S, R>, deps: SandboxStageDeps) {
  const { pool } = deps;
  return async (raw: CandidateRef): Promise<R> => {
    const started = performance.now();
    const { candidateId } = CandidateRef.parse(raw);
    const candidate = await loadCandidate(pool, candidateId);
    const settled = stage.settled(candidate);
    if (settled !== undefined) return settled;
    const { config } = await loadCandidateContext(pool, candidateId);
    const request = buildRequest(stage.kind, candidate.code!, config, settingsFromEnv());
    const result = stage.stored(await runInActivity(request, candidateId, deps.runner));
    const stored = await storeStageResult(pool, candidateId, result);
    log.info(stage.logged, { candidateId, failureClass: result.row.failureClass, ...stage.logFields(result.row, started), stored });
    return stage.result(candidateId, result.row);
  };
}

const wrongKind = (outcome: SandboxOutcome, kind: string) => new Error(`runner answered a ${outcome.kind} result to a ${kind} request`);

const validateStage: Stage<ValidateStored, ValidateResult> = {
  kind: 'validate',
  settled: (c) =>
    // Already validated (a retry after the row was written) or nothing to validate.
    c.has_validation || c.status === 'extract-failed' || c.code === null
      ? { candidateId: c.id, valid: c.valid === true, failureClass: c.failure_class }
      : undefined,
  stored: (outcome) => {
    if (outcome.kind !== 'validate') throw wrongKind(outcome, 'validate');
    return { stage: 'validate', row: validationRow(outcome) };
  },
  result: (candidateId, row) => ({ candidateId, valid: row.valid, failureClass: row.failureClass }),
  logged: 'candidate validated',
  logFields: (row, startedMs) => ({
    valid: row.valid,
    totalS: row.timings.validate.totalS,
    // activity start to row stored (bench/RESULTS.md: the worker's per-candidate time)
    activityS: Math.round(performance.now() - startedMs) / 1000,
  }),
};

const trainStage: Stage<TrainStored, TrainResult> = {
  kind: 'train',
  settled: (c) => {
    if (c.has_training) return { candidateId: c.id, accuracy: c.accuracy, failureClass: c.failure_class };
    // Only valid candidates train; report why this one did not.
    if (c.status !== 'valid' || c.code === null) {
      return { candidateId: c.id, accuracy: null, failureClass: c.failure_class ?? `not-trainable:${c.status}` };
    }
    return undefined;
  },
  stored: (outcome) => {
    if (outcome.kind !== 'train') throw wrongKind(outcome, 'train');
    return { stage: 'train', row: trainingRow(outcome) };
  },
  result: (candidateId, row) => ({ candidateId, accuracy: row.accuracy, failureClass: row.failureClass }),
  logged: 'candidate trained',
  logFields: (row) => ({ accuracy: row.accuracy, trainS: row.timings.train.trainS, imagesPerS: row.timings.train.imagesPerS }),
};

export function createValidateActivities(deps: SandboxStageDeps) {
  return { validateCandidate: sandboxStage(validateStage, deps) };
}

export function createTrainActivities(deps: SandboxStageDeps) {
  return { trainCandidate: sandboxStage(trainStage, deps) };
}
