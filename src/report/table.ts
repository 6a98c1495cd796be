/**
 * The report's side of the paper table (src/core/paper-table.ts: the rows, the columns and
 * the report's row in percent): which cycles it shows, the run's summary from the pooled
 * row, and the CSV. Finished cycles use the metrics stored by the cycle workflow; a cycle
 * still running is computed from its candidate rows so far, with the same function as
 * bookkeeping (db/candidates cycleMetricsOfRows), and marked unfinished.
 */
import { loopRows, paperRow, percent, pooledRow, TABLE_COLUMNS, tableRow, type CycleTableRow, type PaperRow } from '../core/paper-table';
import type { CycleMetrics } from '../core/stages';
import { cycleMetricsOfRows, type OutcomeRow } from '../db/candidates';
import type { CycleRow } from '../db/runs';

/** Each cycle's metrics: stored once it finished, computed from its rows so far while it runs. */
export function cycleMetricsOf(cycles: readonly CycleRow[], outcomes: readonly OutcomeRow[]): Array<{ metrics: CycleMetrics; finished: boolean }> {
  return cycles.map((cycle) => (cycle.metrics ? { metrics: cycle.metrics, finished: true } : { metrics: cycleMetricsOfRows(cycle.cycle, outcomes, cycle.corpus_size), finished: false }));
}

/** The paper-table rows of every cycle that sampled anything (cycle 0 only when it sampled the base model's baseline). */
export function cyclePaperRows(cycles: readonly CycleRow[], outcomes: readonly OutcomeRow[]): PaperRow[] {
  return cycleMetricsOf(cycles, outcomes)
    .map(({ metrics, finished }) => paperRow(metrics, finished))
    .filter((row) => row.sampled > 0);
}

export interface RunSummary {
  cycles: number;
  sampled: number;
  valid: number;
  /** Valid rate over all samples of the run, with its 95 % Wilson interval. */
  validPct: number;
  validLowPct: number;
  validHighPct: number;
  peakValid: { cycle: number; pct: number } | null;
  firstMeanPct: number | null;
  lastMeanPct: number | null;
  firstAbove40Pct: number | null;
  lastAbove40Pct: number | null;
  bestPct: number | null;
  admitted: number;
}

/** The run over its loop cycles: the paper table's pooled row, plus the peak cycle and first/last trends. */
export function summarize(rows: readonly PaperRow[]): RunSummary {
  const loop = loopRows(rows).map(tableRow);
  const pooled = pooledRow(loopRows(rows));
  const peak = loop.reduce<CycleTableRow | null>((best, row) => (!best || row.validPct > best.validPct ? row : best), null);
  const withMean = loop.filter((row) => row.meanPct !== null);
  return {
    cycles: loop.length,
    sampled: pooled.sampled,
    valid: pooled.valid,
    validPct: percent(pooled.validRate),
    validLowPct: percent(pooled.validRateLow),
    validHighPct: percent(pooled.validRateHigh),
    peakValid: peak ? { cycle: peak.cycle, pct: peak.validPct } : null,
    firstMeanPct: withMean[0]?.meanPct ?? null,
    lastMeanPct: withMean.at(-1)?.meanPct ?? null,
    firstAbove40Pct: withMean[0]?.above40Pct ?? null,
    lastAbove40Pct: withMean.at(-1)?.above40Pct ?? null,
    bestPct: percent(pooled.bestAccuracy),
    admitted: pooled.unique,
  };
}

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
export function csvField(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function tableToCsv(rows: readonly CycleTableRow[]): string {
  const lines = [TABLE_COLUMNS.map((column) => csvField(column.title)).join(',')];
  for (const row of rows) lines.push(TABLE_COLUMNS.map((column) => csvField(row[column.key])).join(','));
  return lines.join('\r\n') + '\r\n';
}
