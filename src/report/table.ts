/**
 * The paper's per-cycle table (Cycle, Valid %, Best %, Mean %, ≥40 %, Unique, Total train
 * prompts) plus the valid rate's Wilson interval, and its CSV form. Finished cycles use
 * the metrics stored by the cycle workflow; a cycle still running is computed from its
 * candidate rows so far, with the same function, and marked unfinished.
 */
import { computeCycleMetrics, wilsonInterval } from '../core/metrics';
import type { CycleMetrics } from '../core/stages';
import type { OutcomeRow } from '../db/candidates';
import type { CycleRow } from '../db/runs';

export interface CycleTableRow {
  cycle: number;
  validPct: number;
  validLowPct: number;
  validHighPct: number;
  /** Samples valid at any attempt (repair from errors). */
  validAfterRepairPct: number;
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

/** A fraction as a percentage with two decimals (null stays null). */
export function percent(fraction: number): number;
export function percent(fraction: number | null): number | null;
export function percent(fraction: number | null): number | null {
  return fraction === null ? null : Math.round(fraction * 10_000) / 100;
}

export function outcomesToMetrics(cycle: CycleRow, outcomes: readonly OutcomeRow[]): CycleMetrics {
  const own = outcomes
    .filter((o) => o.cycle === cycle.cycle)
    .map((o) => ({
      sampleIndex: o.sample_index,
      attempt: o.attempt,
      valid: o.valid === true,
      accuracy: o.accuracy,
      failureClass: o.failure_class,
      admitted: o.admitted,
    }));
  return computeCycleMetrics(cycle.cycle, own, cycle.corpus_size);
}

export function tableRow(metrics: CycleMetrics, finished: boolean): CycleTableRow {
  return {
    cycle: metrics.cycle,
    validPct: percent(metrics.validRate),
    validLowPct: percent(metrics.validRateLow),
    validHighPct: percent(metrics.validRateHigh),
    validAfterRepairPct: percent(metrics.validAfterRepairRate),
    bestPct: percent(metrics.bestAccuracy),
    meanPct: percent(metrics.meanAccuracy),
    above40Pct: percent(metrics.shareAbove40),
    unique: metrics.admitted,
    totalTrainPrompts: metrics.totalTrainPrompts,
    sampled: metrics.sampled,
    valid: metrics.valid,
    trained: metrics.trained,
    finished,
  };
}

/** Each cycle's metrics: stored once it finished, computed from its rows so far while it runs. */
export function cycleMetricsOf(cycles: readonly CycleRow[], outcomes: readonly OutcomeRow[]): Array<{ metrics: CycleMetrics; finished: boolean }> {
  return cycles.map((cycle) => (cycle.metrics ? { metrics: cycle.metrics, finished: true } : { metrics: outcomesToMetrics(cycle, outcomes), finished: false }));
}

/** One row per cycle that sampled anything (cycle 0 only when it sampled the base model's baseline). */
export function buildCycleTable(cycles: readonly CycleRow[], outcomes: readonly OutcomeRow[]): CycleTableRow[] {
  return cycleMetricsOf(cycles, outcomes)
    .map(({ metrics, finished }) => tableRow(metrics, finished))
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

/** The run over its loop cycles (cycle 0's baseline is the base model, not the loop). */
export function summarize(allRows: readonly CycleTableRow[]): RunSummary {
  const rows = allRows.filter((row) => row.cycle > 0);
  const sampled = rows.reduce((sum, row) => sum + row.sampled, 0);
  const valid = rows.reduce((sum, row) => sum + row.valid, 0);
  const [low, high] = wilsonInterval(valid, sampled);
  const peak = rows.reduce<CycleTableRow | null>((best, row) => (!best || row.validPct > best.validPct ? row : best), null);
  const withMean = rows.filter((row) => row.meanPct !== null);
  const bests = rows.flatMap((row) => (row.bestPct === null ? [] : [row.bestPct]));
  return {
    cycles: rows.length,
    sampled,
    valid,
    validPct: percent(sampled ? valid / sampled : 0),
    validLowPct: percent(low),
    validHighPct: percent(high),
    peakValid: peak ? { cycle: peak.cycle, pct: peak.validPct } : null,
    firstMeanPct: withMean[0]?.meanPct ?? null,
    lastMeanPct: withMean.at(-1)?.meanPct ?? null,
    firstAbove40Pct: withMean[0]?.above40Pct ?? null,
    lastAbove40Pct: withMean.at(-1)?.above40Pct ?? null,
    bestPct: bests.length ? Math.max(...bests) : null,
    admitted: rows.reduce((sum, row) => sum + row.unique, 0),
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
