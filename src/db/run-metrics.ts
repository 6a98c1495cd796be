/** Stored per-cycle metrics of a run, and the paper's table made from them. */
import { CycleMetrics } from '../core/stages';
import type { Queryable } from './pool';

export async function loadCycleMetrics(db: Queryable, runId: string): Promise<CycleMetrics[]> {
  const { rows } = await db.query<{ metrics: unknown }>(
    `SELECT metrics FROM cycles WHERE run_id = $1 AND cycle > 0 AND metrics IS NOT NULL ORDER BY cycle`,
    [runId],
  );
  return rows.map((row) => CycleMetrics.parse(row.metrics));
}

const pct = (x: number | null) => (x === null ? '-' : (100 * x).toFixed(2));

/** Cycle, Valid %, Best %, Mean %, ≥40 %, Unique, Total train prompts. */
export function formatRunTable(metrics: readonly CycleMetrics[]): string {
  if (!metrics.length) return 'no finished cycles yet';
  const header = ['Cycle', 'Valid %', 'Best %', 'Mean %', '≥40 %', 'Unique', 'Total train prompts'];
  const rows = metrics.map((m) => [
    String(m.cycle),
    pct(m.validRate),
    pct(m.bestAccuracy),
    pct(m.meanAccuracy),
    pct(m.shareAbove40),
    String(m.admitted),
    String(m.totalTrainPrompts),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
