/**
 * Cycles' metrics in the layout of the paper's results table (Cycle, Valid %, Best %,
 * Mean %, ≥40 %, Unique, Total train prompts), plus a pooled "all" row whose valid rate
 * carries its Wilson 95 % interval, as the paper reports the average valid rate.
 */
import { wilsonInterval } from './metrics';
import type { CycleMetrics } from './stages';

/** The paper's seven columns, then what archloop adds: validity after repair from errors. */
export const PAPER_COLUMNS = ['Cycle', 'Valid %', 'Best %', 'Mean %', '≥40 %', 'Unique', 'Total train prompts', 'After repair %'] as const;

export interface PaperRow {
  cycle: string;
  sampled: number;
  valid: number;
  validRate: number;
  validRateLow: number;
  validRateHigh: number;
  validAfterRepair: number;
  validAfterRepairRate: number;
  bestAccuracy: number | null;
  meanAccuracy: number | null;
  shareAbove40: number | null;
  unique: number;
  totalTrainPrompts: number;
}

function rowOf(metrics: CycleMetrics): PaperRow {
  return {
    // Cycle 0 is the base model's baseline, before any fine-tune.
    cycle: metrics.cycle === 0 ? '0 (base)' : String(metrics.cycle),
    sampled: metrics.sampled,
    valid: metrics.valid,
    validRate: metrics.validRate,
    validRateLow: metrics.validRateLow,
    validRateHigh: metrics.validRateHigh,
    validAfterRepair: metrics.validAfterRepair,
    validAfterRepairRate: metrics.validAfterRepairRate,
    bestAccuracy: metrics.bestAccuracy,
    meanAccuracy: metrics.meanAccuracy,
    shareAbove40: metrics.shareAbove40,
    unique: metrics.admitted,
    totalTrainPrompts: metrics.totalTrainPrompts,
  };
}

/** Pools all cycles: rates over all samples, means weighted by trained models. */
export function pooledRow(cycles: readonly CycleMetrics[]): PaperRow {
  const sampled = sum(cycles.map((c) => c.sampled));
  const valid = sum(cycles.map((c) => c.valid));
  const validAfterRepair = sum(cycles.map((c) => c.validAfterRepair));
  const withAccuracy = cycles.filter((c) => c.trained > 0 && c.meanAccuracy !== null);
  const trained = sum(withAccuracy.map((c) => c.trained));
  const weighted = (pick: (c: CycleMetrics) => number | null) =>
    trained ? sum(withAccuracy.map((c) => (pick(c) ?? 0) * c.trained)) / trained : null;
  const bests = cycles.map((c) => c.bestAccuracy).filter((b): b is number => b !== null);
  const [low, high] = wilsonInterval(valid, sampled);
  return {
    cycle: 'all',
    sampled,
    valid,
    validRate: sampled ? valid / sampled : 0,
    validRateLow: low,
    validRateHigh: high,
    validAfterRepair,
    validAfterRepairRate: sampled ? validAfterRepair / sampled : 0,
    bestAccuracy: bests.length ? Math.max(...bests) : null,
    meanAccuracy: weighted((c) => c.meanAccuracy),
    shareAbove40: weighted((c) => c.shareAbove40),
    unique: sum(cycles.map((c) => c.admitted)),
    totalTrainPrompts: cycles.length ? cycles[cycles.length - 1]!.totalTrainPrompts : 0,
  };
}

/** One row per cycle, then the pooled row over the loop's cycles (the baseline is not one of them). */
export function paperRows(cycles: readonly CycleMetrics[]): PaperRow[] {
  const ordered = [...cycles].sort((a, b) => a.cycle - b.cycle);
  const loop = ordered.filter((c) => c.cycle > 0);
  return ordered.length ? [...ordered.map(rowOf), ...(loop.length ? [pooledRow(loop)] : [])] : [];
}

const percent = (value: number | null) => (value === null ? '—' : (value * 100).toFixed(2));

function cells(row: PaperRow): string[] {
  const valid = row.sampled
    ? `${(row.validRate * 100).toFixed(1)} (${(row.validRateLow * 100).toFixed(1)}–${(row.validRateHigh * 100).toFixed(1)})`
    : '—';
  return [
    row.cycle,
    valid,
    percent(row.bestAccuracy),
    percent(row.meanAccuracy),
    percent(row.shareAbove40),
    String(row.unique),
    String(row.totalTrainPrompts),
    row.sampled ? (row.validAfterRepairRate * 100).toFixed(1) : '—',
  ];
}

/** A plain-text table: the first column left-aligned, numbers right-aligned. */
export function formatPaperTable(cycles: readonly CycleMetrics[]): string {
  const rows = paperRows(cycles).map(cells);
  const table = [[...PAPER_COLUMNS], ...rows];
  const widths = PAPER_COLUMNS.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  const line = (row: string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  const separator = widths.map((width) => '-'.repeat(width)).join('  ');
  const body = rows.map(line);
  if (body.length > 1) body.splice(body.length - 1, 0, separator);
  return [line(table[0]!), separator, ...body].join('\n');
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
