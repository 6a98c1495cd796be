/**
 * What a report reads from Postgres, each row parsed with zod. Queries only: shaping the
 * rows into tables and charts happens in the pure modules next to this one.
 */
import { z } from 'zod';
import { CycleMetrics } from '../core/stages';
import type { Queryable } from '../db/pool';

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
  /** Corpus size after this cycle (seed plus admitted so far): the training prompts of the next fine-tune. */
  corpus_size: z.coerce.number().int(),
});
export type CycleRow = z.infer<typeof CycleRow>;

/** The columns of a candidate that the per-cycle numbers and plots depend on. */
export const OutcomeRow = z.object({
  cycle: z.number().int(),
  status: z.string(),
  sample_index: z.number().int(),
  attempt: z.number().int(),
  valid: z.boolean().nullable(),
  novel: z.boolean().nullable(),
  admitted: z.boolean(),
  failure_class: z.string().nullable(),
  accuracy: z.number().nullable(),
});
export type OutcomeRow = z.infer<typeof OutcomeRow>;

export const ArchitectureRow = z.object({
  id: z.coerce.number().int(),
  cycle: z.number().int(),
  sample_index: z.number().int(),
  status: z.string(),
  novel: z.boolean().nullable(),
  admitted: z.boolean(),
  accuracy: z.number(),
  params: z.coerce.number().nullable(),
  flops: z.number().nullable(),
  code: z.string().nullable(),
  graph_ir: z.unknown(),
});
export type ArchitectureRow = z.infer<typeof ArchitectureRow>;

export interface ReportData {
  run: RunRow;
  cycles: CycleRow[];
  outcomes: OutcomeRow[];
  top: ArchitectureRow[];
}

export class UnknownRunError extends Error {
  override name = 'UnknownRunError';
}

export async function loadReportData(db: Queryable, runId: string, topCount: number): Promise<ReportData> {
  const runs = await db.query(
    'SELECT id, name, preset, status, config, created_at, finished_at FROM runs WHERE id = $1',
    [runId],
  );
  if (runs.rows.length === 0) throw new UnknownRunError(`unknown run ${runId}`);
  const cycles = await db.query(
    `SELECT cy.cycle, cy.model, cy.status, cy.metrics,
            (SELECT count(*) FROM corpus co
              WHERE co.run_id IS NULL OR (co.run_id = cy.run_id AND co.cycle <= cy.cycle)) AS corpus_size
       FROM cycles cy WHERE cy.run_id = $1 ORDER BY cy.cycle`,
    [runId],
  );
  const outcomes = await db.query(
    `SELECT cycle, sample_index, attempt, status, valid, novel, admitted, failure_class, accuracy
       FROM candidates WHERE run_id = $1 ORDER BY cycle, sample_index, attempt`,
    [runId],
  );
  // Top by accuracy among valid, trained candidates; ties go to the earlier one.
  const top = await db.query(
    `SELECT id, cycle, sample_index, status, novel, admitted, accuracy, params, flops, code, graph_ir
       FROM candidates
      WHERE run_id = $1 AND valid AND accuracy IS NOT NULL
      ORDER BY accuracy DESC, cycle, sample_index
      LIMIT $2`,
    [runId, topCount],
  );
  return {
    run: RunRow.parse(runs.rows[0]),
    cycles: cycles.rows.map((row) => CycleRow.parse(row)),
    outcomes: outcomes.rows.map((row) => OutcomeRow.parse(row)),
    top: top.rows.map((row) => ArchitectureRow.parse(row)),
  };
}
