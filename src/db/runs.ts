/**
 * The `runs` and `cycles` tables: a run's config and status, one row per cycle with its
 * model, timing and stored metrics.
 */
import { z } from 'zod';
import { parseConfig, type RunConfig } from '../core/config';
import { CycleMetrics } from '../core/stages';
import { afterCycle, teachesUnder } from './corpus';
import type { Queryable } from './pool';

// --- runs -------------------------------------------------------------------------------

/** The config stored for `runId` as it was written (unparsed), or undefined for an unknown run. */
export async function storedConfig(db: Queryable, runId: string): Promise<unknown> {
  const { rows } = await db.query<{ config: unknown }>('SELECT config FROM runs WHERE id = $1', [runId]);
  return rows[0]?.config;
}

export async function loadRunConfig(db: Queryable, runId: string): Promise<RunConfig> {
  const config = await storedConfig(db, runId);
  if (config === undefined) throw new Error(`unknown run ${runId}`);
  return parseConfig(config);
}

/** Registers a run; a row already under that id stays as it is (the caller compares configs). */
export async function insertRun(db: Queryable, runId: string, config: RunConfig): Promise<void> {
  await db.query(`INSERT INTO runs (id, name, preset, config) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`, [
    runId,
    config.name,
    config.preset,
    JSON.stringify(config),
  ]);
}

export async function finishRun(db: Queryable, runId: string, status: string): Promise<void> {
  await db.query(`UPDATE runs SET status = $2, finished_at = now(), updated_at = now() WHERE id = $1`, [runId, status]);
}

/**
 * A run row as given: any stored config (one an older archloop wrote, or none this one can
 * parse), a status and a creation time (tests; a new run goes through insertRun).
 */
export async function insertRunRecord(
  db: Queryable,
  run: { id: string; name: string; preset: string; config: unknown; status?: string; createdAt?: Date },
): Promise<void> {
  await db.query(`INSERT INTO runs (id, name, preset, config, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)`, [
    run.id,
    run.name,
    run.preset,
    JSON.stringify(run.config),
    run.status ?? 'running',
    run.createdAt ?? new Date(),
  ]);
}

/** The run's status, or undefined when the id was never used. */
export async function runStatus(db: Queryable, runId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ status: string }>('SELECT status FROM runs WHERE id = $1', [runId]);
  return rows[0]?.status;
}

export const RunRow = z.object({
  id: z.string(),
  name: z.string(),
  preset: z.string(),
  status: z.string(),
  config: z.unknown(),
  created_at: z.date(),
  finished_at: z.date().nullable(),
});
export type RunRow = z.infer<typeof RunRow>;

export async function runRow(db: Queryable, runId: string): Promise<RunRow | undefined> {
  const { rows } = await db.query('SELECT id, name, preset, status, config, created_at, finished_at FROM runs WHERE id = $1', [runId]);
  return rows.length ? RunRow.parse(rows[0]) : undefined;
}

// --- cycles -----------------------------------------------------------------------------

export async function startCycle(db: Queryable, runId: string, cycle: number, model: string): Promise<void> {
  await db.query(`INSERT INTO cycles (run_id, cycle, model) VALUES ($1, $2, $3) ON CONFLICT (run_id, cycle) DO NOTHING`, [
    runId,
    cycle,
    model,
  ]);
}

/** Marks the cycle finished (its first finish time stays) with its metrics, or none. */
export async function finishCycle(db: Queryable, runId: string, cycle: number, metrics: CycleMetrics | null): Promise<void> {
  await db.query(
    `UPDATE cycles SET metrics = $3, status = 'finished', finished_at = COALESCE(finished_at, now())
      WHERE run_id = $1 AND cycle = $2`,
    [runId, cycle, metrics === null ? null : JSON.stringify(metrics)],
  );
}

/** Stored per-cycle metrics of a run (cycle 0 has a row only when it sampled a baseline). */
export async function loadCycleMetrics(db: Queryable, runId: string): Promise<CycleMetrics[]> {
  const { rows } = await db.query<{ metrics: unknown }>(
    `SELECT metrics FROM cycles WHERE run_id = $1 AND metrics IS NOT NULL ORDER BY cycle`,
    [runId],
  );
  return rows.map((row) => CycleMetrics.parse(row.metrics));
}

/** Wall time of each finished loop cycle (cycle 0, the set-up, excluded), in cycle order. */
export async function loopCycleSeconds(db: Queryable, runId: string): Promise<number[]> {
  const { rows } = await db.query<{ seconds: number }>(
    `SELECT extract(epoch FROM finished_at - started_at)::float AS seconds FROM cycles
      WHERE run_id = $1 AND cycle > 0 AND finished_at IS NOT NULL ORDER BY cycle`,
    [runId],
  );
  return rows.map((row) => row.seconds);
}

/** A stored metrics value that no longer parses is treated as missing and recomputed. */
const StoredMetrics = z.unknown().transform((value) => {
  const parsed = CycleMetrics.safeParse(value);
  return parsed.success ? parsed.data : null;
});

export const CycleRow = z.object({
  cycle: z.number().int(),
  model: z.string(),
  status: z.string(),
  metrics: StoredMetrics,
  /** Training prompts of the fine-tune after this cycle (the seed entries that teach, plus admissions so far). */
  corpus_size: z.coerce.number().int(),
});
export type CycleRow = z.infer<typeof CycleRow>;

/**
 * The run's cycles, each with the corpus size the metrics count under the run's profile
 * (null when the stored config no longer parses: then every entry counts).
 */
export async function cycleRows(db: Queryable, runId: string, profile: string | null): Promise<CycleRow[]> {
  const { rows } = await db.query(
    `SELECT cy.cycle, cy.model, cy.status, cy.metrics,
            (SELECT count(*) FROM corpus c
              WHERE ${afterCycle('cy.run_id', 'cy.cycle')}
                AND ($2::text IS NULL OR ${teachesUnder('$2')})) AS corpus_size
       FROM cycles cy WHERE cy.run_id = $1 ORDER BY cy.cycle`,
    [runId, profile],
  );
  return z.array(CycleRow).parse(rows);
}
