/** Rows of `runs` and `cycles`. */
import { parseConfig, type RunConfig } from '../core/config';
import type { Queryable } from './pool';

export async function loadRunConfig(db: Queryable, runId: string): Promise<RunConfig> {
  const { rows } = await db.query<{ config: unknown }>('SELECT config FROM runs WHERE id = $1', [runId]);
  if (rows.length === 0) throw new Error(`unknown run ${runId}`);
  return parseConfig(rows[0]!.config);
}

/** The run config of the run a candidate belongs to, and the candidate's key. */
export async function loadCandidateContext(
  db: Queryable,
  candidateId: number,
): Promise<{ runId: string; cycle: number; sampleIndex: number; config: RunConfig }> {
  const { rows } = await db.query<{ run_id: string; cycle: number; sample_index: number; config: unknown }>(
    `SELECT c.run_id, c.cycle, c.sample_index, r.config
       FROM candidates c JOIN runs r ON r.id = c.run_id WHERE c.id = $1`,
    [candidateId],
  );
  const row = rows[0];
  if (!row) throw new Error(`unknown candidate ${candidateId}`);
  return { runId: row.run_id, cycle: row.cycle, sampleIndex: row.sample_index, config: parseConfig(row.config) };
}
