/** Stored per-cycle metrics of a run (cycle 0 has a row only when it sampled a baseline). */
import { CycleMetrics } from '../core/stages';
import type { Queryable } from './pool';

export async function loadCycleMetrics(db: Queryable, runId: string): Promise<CycleMetrics[]> {
  const { rows } = await db.query<{ metrics: unknown }>(
    `SELECT metrics FROM cycles WHERE run_id = $1 AND metrics IS NOT NULL ORDER BY cycle`,
    [runId],
  );
  return rows.map((row) => CycleMetrics.parse(row.metrics));
}
