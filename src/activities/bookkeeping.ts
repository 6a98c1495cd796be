/** Run and cycle rows, and the per-cycle metrics computed from candidate rows. */
import { isDeepStrictEqual } from 'node:util';
import { ApplicationFailure, log } from '@temporalio/activity';
import type pg from 'pg';
import { z } from 'zod';
import { ConfigError, parseConfig, parseNewConfig, type RunConfig } from '../core/config';
import { runIdProblem } from '../llm/artifacts';
import { computeCycleMetrics } from '../core/metrics';
import {
  CycleRef,
  FinishRunInput,
  InfraFailureInput,
  StartCycleInput,
  StartRunInput,
  type CycleMetrics,
} from '../core/stages';
import { profileOf, teachesUnder } from '../corpus/checks';
import { loadRunConfig } from '../db/runs';
import type { BookkeepingActivities } from './contract';

const OutcomeRow = z.object({
  sample_index: z.number().int(),
  attempt: z.number().int(),
  valid: z.boolean().nullable(),
  accuracy: z.number().nullable(),
  failure_class: z.string().nullable(),
  admitted: z.boolean(),
});

export function createBookkeepingActivities(deps: { pool: pg.Pool }): BookkeepingActivities {
  const { pool } = deps;
  return {
    async startRun(raw) {
      const input = StartRunInput.parse(raw);
      const stored = await storedConfig(pool, input.runId);
      if (stored !== undefined) {
        // A retried start, or a run resumed under its own id: same config, same rows.
        assertSameConfig(input.runId, stored, input.config);
        log.info('run registered before; continuing it', { runId: input.runId });
        return;
      }
      const config = newRunConfig(input.runId, input.config);
      await pool.query(
        `INSERT INTO runs (id, name, preset, config) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING`,
        [input.runId, config.name, config.preset, JSON.stringify(config)],
      );
      // Two starts racing on one id: whichever row won, it must be this config.
      assertSameConfig(input.runId, (await storedConfig(pool, input.runId))!, config);
      log.info('run registered', { runId: input.runId, preset: config.preset, cycles: config.cycles });
    },

    async finishRun(raw) {
      const input = FinishRunInput.parse(raw);
      await pool.query(`UPDATE runs SET status = $2, finished_at = now(), updated_at = now() WHERE id = $1`, [
        input.runId,
        input.status,
      ]);
      log.info('run finished', { runId: input.runId, status: input.status });
    },

    async startCycle(raw) {
      const input = StartCycleInput.parse(raw);
      await pool.query(
        `INSERT INTO cycles (run_id, cycle, model) VALUES ($1, $2, $3)
         ON CONFLICT (run_id, cycle) DO NOTHING`,
        [input.runId, input.cycle, input.model],
      );
    },

    async finishCycle(raw) {
      const ref = CycleRef.parse(raw);
      const metrics = await computeStoredCycleMetrics(pool, ref.runId, ref.cycle);
      // Cycle 0 samples only for a baseline; without one it has no metrics row (a row of
      // zeros would read as "the base model wrote nothing valid" in the paper's table).
      const stored = ref.cycle > 0 || metrics.sampled > 0 ? JSON.stringify(metrics) : null;
      await pool.query(
        `UPDATE cycles SET metrics = $3, status = 'finished', finished_at = COALESCE(finished_at, now())
         WHERE run_id = $1 AND cycle = $2`,
        [ref.runId, ref.cycle, stored],
      );
      log.info('cycle finished', { ...ref, valid: metrics.valid, sampled: metrics.sampled, admitted: metrics.admitted });
      return metrics;
    },

    async markInfraFailed(raw) {
      const input = InfraFailureInput.parse(raw);
      // Only a candidate still in flight changes: a result already stored stays.
      await pool.query(
        `UPDATE candidates SET status = 'infra-failed', failure_class = 'infra-failed', failure_message = $2, updated_at = now()
          WHERE id = $1 AND status IN ('sampled', 'valid')`,
        [input.candidateId, `${input.stage}: ${input.message}`.slice(0, 4000)],
      );
      log.warn('candidate infra-failed; the cycle goes on without it', { ...input });
    },
  };
}

async function storedConfig(pool: pg.Pool, runId: string): Promise<unknown> {
  const { rows } = await pool.query<{ config: unknown }>('SELECT config FROM runs WHERE id = $1', [runId]);
  return rows[0]?.config;
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
export async function computeStoredCycleMetrics(pool: pg.Pool, runId: string, cycle: number): Promise<CycleMetrics> {
  const { rows } = await pool.query(
    `SELECT sample_index, attempt, valid, accuracy, failure_class, admitted FROM candidates
      WHERE run_id = $1 AND cycle = $2 ORDER BY sample_index, attempt`,
    [runId, cycle],
  );
  const outcomes = rows.map((row) => {
    const r = OutcomeRow.parse(row);
    return {
      sampleIndex: r.sample_index,
      attempt: r.attempt,
      valid: r.valid === true,
      accuracy: r.accuracy,
      failureClass: r.failure_class,
      admitted: r.admitted,
    };
  });
  // Training prompts of the next fine-tune: the seed entries valid at the run's shape plus
  // everything admitted so far (the same rows corpusAsOf gives the fine-tune).
  const profile = profileOf(await loadRunConfig(pool, runId));
  const { rows: corpus } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM corpus c WHERE (c.run_id IS NULL OR (c.run_id = $1 AND c.cycle <= $2)) AND ${teachesUnder('$3')}`,
    [runId, cycle, profile],
  );
  return computeCycleMetrics(cycle, outcomes, corpus[0]?.n ?? 0);
}
