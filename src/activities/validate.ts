/**
 * validateCandidate (control queue): runs the candidate's code through the sandbox runner's
 * validate pipeline and stores the outcome in its row. A failing candidate is a stored,
 * classified result; only a broken machine (no runner, no bwrap) fails the activity.
 */
import { log } from '@temporalio/activity';
import type pg from 'pg';
import { CandidateRef, type ValidateResult } from '../core/stages';
import { loadCandidateContext } from '../db/runs';
import { runInActivity } from '../sandbox/activity';
import { buildRequest, settingsFromEnv } from '../sandbox/request';
import { validationRow } from '../sandbox/rows';
import { runSandbox } from '../sandbox/runner';
import { loadCandidate, storeValidation } from '../sandbox/store';
import type { ControlActivities } from './contract';

export interface ValidateDeps {
  pool: pg.Pool;
  /** Injected in tests that are not about the runner. */
  runner?: typeof runSandbox;
}

export function createValidateActivities(deps: ValidateDeps): Pick<ControlActivities, 'validateCandidate'> {
  const { pool } = deps;
  return {
    async validateCandidate(raw) {
      const started = performance.now();
      const { candidateId } = CandidateRef.parse(raw);
      const candidate = await loadCandidate(pool, candidateId);
      const summary = (valid: boolean, failureClass: string | null): ValidateResult => ({ candidateId, valid, failureClass });
      if (candidate.has_validation || candidate.status === 'extract-failed' || candidate.code === null) {
        // Already validated (a retry after the row was written) or nothing to validate.
        return summary(candidate.valid === true, candidate.failure_class);
      }
      const { config } = await loadCandidateContext(pool, candidateId);
      const request = buildRequest('validate', candidate.code, config, settingsFromEnv());
      const outcome = await runInActivity(request, candidateId, deps.runner);
      if (outcome.kind !== 'validate') throw new Error(`runner answered a ${outcome.kind} result to a validate request`);
      const row = validationRow(outcome);
      const stored = await storeValidation(pool, candidateId, row);
      log.info('candidate validated', {
        candidateId,
        valid: row.valid,
        failureClass: row.failureClass,
        totalS: outcome.timings.totalS,
        // activity start to row stored (bench/RESULTS.md: the worker's per-candidate time)
        activityS: Math.round(performance.now() - started) / 1000,
        stored,
      });
      return summary(row.valid, row.failureClass);
    },
  };
}
