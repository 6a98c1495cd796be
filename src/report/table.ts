/**
 * The report's renderer of the paper table (src/core/paper-table.ts): one row per cycle in
 * percent, for the HTML table, the CSV and the charts, and the run's summary from the
 * pooled row. Finished cycles use the metrics stored by the cycle workflow; a cycle still
 * running is computed from its candidate rows so far, with the same function, and marked
 * unfinished.
 */
import { computeCycleMetrics } from '../core/metrics';
import { loopRows, paperRow, percent, pooledRow, type PaperRow } from '../core/paper-table';
import type { CycleMetrics } from '../core/stages';
import { outcomeOf, type OutcomeRow } from '../db/candidates';
import type { CycleRow } from '../db/runs';

export interface CycleTableRow {
  cycle: number;
  validPct: number;
  validLowPct: number;
  validHighPct: number;
  /** Samples valid at any attempt (repair from errors); null for cycle 0, the first-attempt baseline. */
  validAfterRepairPct: number | null;
  bestPct: number | null;
  meanPct: number | null;
  above40Pct: number | null;
  /** Novel architectures admitted to the corpus in this cycle. */
  unique: number;
  totalTrainPrompts: number;
  sampled: number;
  valid: number;
  trained: number;
  finished: boolean;
}

export function outcomesToMetrics(cycle: CycleRow, outcomes: readonly OutcomeRow[]): CycleMetrics {
  const own = outcomes.filter((o) => o.cycle === cycle.cycle).map(outcomeOf);
  return computeCycleMetrics(cycle.cycle, own, cycle.corpus_size);
}

/** Each cycle's metrics: stored once it finished, computed from its rows so far while it runs. */
export function cycleMetricsOf(cycles: readonly CycleRow[], outcomes: readonly OutcomeRow[]): Array<{ metrics: CycleMetrics; finished: boolean }> {
  return cycles.map((cycle) => (cycle.metrics ? { metrics: cycle.metrics, finished: true } : { metrics: outcomesToMetrics(cycle, outcomes), finished: false }));
}

/** The paper-table rows of every cycle that sampled anything (cycle 0 only when it sampled the base model's baseline). */
export function cyclePaperRows(cycles: readonly CycleRow[], outcomes: readonly OutcomeRow[]): PaperRow[] {
  return cycleMetricsOf(cycles, outcomes)
    .map(({ metrics, finished }) => paperRow(metrics, finished))
    .filter((row) => row.sampled > 0);
}

/** A paper-table row as the report shows it: rates in percent. */
export function tableRow(row: PaperRow): CycleTableRow {
  if (row.cycle === 'all') throw new Error('the report table has one row per cycle; the pooled row is its summary');
  return {
    cycle: row.cycle,
    validPct: percent(row.validRate),
    validLowPct: percent(row.validRateLow),
    validHighPct: percent(row.validRateHigh),
    validAfterRepairPct: percent(row.validAfterRepairRate),
    bestPct: percent(row.bestAccuracy),
    meanPct: percent(row.meanAccuracy),
    above40Pct: percent(row.shareAbove40),
    unique: row.unique,
    totalTrainPrompts: row.totalTrainPrompts,
    sampled: row.sampled,
    valid: row.valid,
    trained: row.trained,
    finished: row.finished,
  };
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

/** Columns of the CSV and of the HTML table, in the paper's order first. */
export const TABLE_COLUMNS: ReadonlyArray<{ key: keyof CycleTableRow; title: string }> = [
  { key: 'cycle', title: 'Cycle' },
  { key: 'validPct', title: 'Valid %' },
  { key: 'bestPct', title: 'Best %' },
  { key: 'meanPct', title: 'Mean %' },
  { key: 'above40Pct', title: '≥40 %' },
  { key: 'unique', title: 'Unique' },
  { key: 'totalTrainPrompts', title: 'Total train prompts' },
  { key: 'validAfterRepairPct', title: 'Valid after repair %' },
  { key: 'validLowPct', title: 'Valid 95 % CI low' },
  { key: 'validHighPct', title: 'Valid 95 % CI high' },
  { key: 'sampled', title: 'Sampled' },
  { key: 'valid', title: 'Valid' },
  { key: 'trained', title: 'Trained' },
  { key: 'finished', title: 'Finished' },
];

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
