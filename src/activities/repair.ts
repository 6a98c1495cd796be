/**
 * repairCandidate (control queue): one more attempt at a candidate that failed extraction
 * or validation (src/llm/repair-attempt.ts: stored as its own row, idempotent on retry).
 * Here: heartbeats while the request is in flight, LLM errors as retryable or not, and a
 * missing design prompt as final.
 */
import { cancellationSignal, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { CandidateRef, type RepairResult } from '../core/stages';
import { repairSource } from '../db/candidates';
import { loadRunConfig } from '../db/runs';
import { MissingPrompt, repairAttempt } from '../llm/repair-attempt';
import { keepAlive, llmFailure } from './llm-support';

export function createRepairActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async repairCandidate(raw: CandidateRef): Promise<RepairResult> {
      const { candidateId } = CandidateRef.parse(raw);
      const failed = await repairSource(pool, candidateId);
      const config = await loadRunConfig(pool, failed.run_id);
      return await repairAttempt(pool, config, failed, { signal: cancellationSignal(), log, keepAlive }).catch((error: unknown) => {
        if (error instanceof MissingPrompt) throw ApplicationFailure.nonRetryable(error.message, 'MissingPrompt');
        throw llmFailure(error);
      });
    },
  };
}
