/** Run bookkeeping: run and cycle rows, and the per-cycle metrics computed from candidate rows. */
import { isDeepStrictEqual } from 'node:util';
import { ApplicationFailure, log } from '@temporalio/activity';
import type pg from 'pg';
import { ConfigError, parseConfig, parseNewConfig, type RunConfig } from '../core/config';
import { runIdProblem } from '../core/run-id';
import {
  CycleRef,
  FinishRunInput,
  InfraFailureInput,
  StartCycleInput,
  StartRunInput,
  type CycleMetrics,
} from '../core/stages';
import { profileOf } from '../corpus/checks';
import { cycleMetricsOfRows, markInfraFailed, outcomeRows } from '../db/candidates';
import { corpusSizeAsOf } from '../db/corpus';
import type { Queryable } from '../db/pool';
import * as runs from '../db/runs';

export function createBookkeepingActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async startRun(raw: StartRunInput): Promise<void> {
      const input = StartRunInput.parse(raw);
      const stored = await runs.storedConfig(pool, input.runId);
      if (stored !== undefined) {
        // A retried start, or a run resumed under its own id: same config, same rows.
        assertSameConfig(input.runId, stored, input.config);
        log.info('run registered before; continuing it', { runId: input.runId });
        return;
      }
      const config = newRunConfig(input.runId, input.config);
      await runs.insertRun(pool, input.runId, config);
      // Two starts racing on one id: whichever row won, it must be this config.
      assertSameConfig(input.runId, await runs.storedConfig(pool, input.runId), config);
      log.info('run registered', { runId: input.runId, preset: config.preset, cycles: config.cycles });
    },

    async finishRun(raw: FinishRunInput): Promise<void> {
      const input = FinishRunInput.parse(raw);
      await runs.finishRun(pool, input.runId, input.status);
      log.info('run finished', { runId: input.runId, status: input.status });
    },

    async startCycle(raw: StartCycleInput): Promise<void> {
      const input = StartCycleInput.parse(raw);
      await runs.startCycle(pool, input.runId, input.cycle, input.model);
    },

    /** Computes the cycle's metrics from its candidate rows, stores and returns them. */
    async finishCycle(raw: CycleRef): Promise<CycleMetrics> {
      const ref = CycleRef.parse(raw);
      const metrics = await computeStoredCycleMetrics(pool, ref.runId, ref.cycle);
      // Cycle 0 samples only for a baseline; without one it has no metrics row (a row of
      // zeros would read as "the base model wrote nothing valid" in the paper's table).
      await runs.finishCycle(pool, ref.runId, ref.cycle, ref.cycle > 0 || metrics.sampled > 0 ? metrics : null);
      log.info('cycle finished', { ...ref, valid: metrics.valid, sampled: metrics.sampled, admitted: metrics.admitted });
      return metrics;
    },

    /** Marks a candidate `infra-failed` after one of its stage activities failed for good. */
    async markInfraFailed(raw: InfraFailureInput): Promise<void> {
      const input = InfraFailureInput.parse(raw);
      // Only a candidate still in flight changes: a result already stored stays.
      await markInfraFailed(pool, input.candidateId, `${input.stage}: ${input.message}`);
      log.warn('candidate infra-failed; the cycle goes on without it', { ...input });
    },
  };
}

/** A new run's config: schema, cross-field checks and a usable run id, or a non-retryable failure. */
function newRunConfig(runId: string, raw: unknown): RunConfig {
  const problem = runIdProblem(runId);
  if (problem) throw ApplicationFailure.nonRetryable(problem, 'InvalidRunId');
  try {
    return parseNewConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) throw ApplicationFailure.nonRetryable(error.message, 'InvalidConfig');
    throw error;
  }
}

/** Configs compared as parsed values (defaults filled, key order and dropped fields ignored). */
function assertSameConfig(runId: string, stored: unknown, requested: unknown): void {
  const normal = (c: unknown) => JSON.parse(JSON.stringify(parseConfig(c))) as unknown;
  if (isDeepStrictEqual(normal(stored), normal(requested))) return;
  throw ApplicationFailure.nonRetryable(
    `run id ${runId} already holds a run with another config: start the new run under another id (or resume ${runId} with \`archloop run --resume ${runId}\`)`,
    'RunIdConflict',
  );
}

/** Metrics of a cycle recomputed from its candidate rows (also used to audit stored metrics). */
export async function computeStoredCycleMetrics(db: Queryable, runId: string, cycle: number): Promise<CycleMetrics> {
  // Training prompts of the next fine-tune: the same rows corpusAsOf gives the fine-tune.
  const profile = profileOf(await runs.loadRunConfig(db, runId));
  return cycleMetricsOfRows(cycle, await outcomeRows(db, runId, cycle), await corpusSizeAsOf(db, runId, cycle, profile));
}
