/**
 * trainCandidate (gpu queue): one epoch of the candidate's own train_setup/learn in the
 * sandbox, test accuracy scored by the runner; the outcome is stored in the row.
 */
import { log } from '@temporalio/activity';
import type pg from 'pg';
import { CandidateRef, type TrainResult } from '../core/stages';
import { loadCandidateContext } from '../db/runs';
import { runInActivity } from '../sandbox/activity';
import { buildRequest, settingsFromEnv } from '../sandbox/request';
import { trainingRow } from '../sandbox/rows';
import { runSandbox } from '../sandbox/runner';
import { loadCandidate, storeTraining } from '../sandbox/store';
import type { GpuActivities } from './contract';

export interface TrainDeps {
  pool: pg.Pool;
  runner?: typeof runSandbox;
}

export function createTrainActivities(deps: TrainDeps): Pick<GpuActivities, 'trainCandidate'> {
  const { pool } = deps;
  return {
    async trainCandidate(raw) {
      const { candidateId } = CandidateRef.parse(raw);
      const candidate = await loadCandidate(pool, candidateId);
      const summary = (accuracy: number | null, failureClass: string | null): TrainResult => ({ candidateId, accuracy, failureClass });
      if (candidate.has_training) return summary(candidate.accuracy, candidate.failure_class);
      if (candidate.status !== 'valid' || candidate.code === null) {
        // Only valid candidates train; report why this one did not.
        return summary(null, candidate.failure_class ?? `not-trainable:${candidate.status}`);
      }
      const { config } = await loadCandidateContext(pool, candidateId);
      const request = buildRequest('train', candidate.code, config, settingsFromEnv());
      const outcome = await runInActivity(request, candidateId, deps.runner);
      if (outcome.kind !== 'train') throw new Error(`runner answered a ${outcome.kind} result to a train request`);
      const row = trainingRow(outcome);
      const stored = await storeTraining(pool, candidateId, row);
      log.info('candidate trained', {
        candidateId,
        accuracy: row.accuracy,
        failureClass: row.failureClass,
        trainS: outcome.timings.trainS,
        imagesPerS: outcome.timings.imagesPerS,
        stored,
      });
      return summary(row.accuracy, row.failureClass);
    },
  };
}
