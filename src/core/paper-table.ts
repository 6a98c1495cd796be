/**
 * The paper's results table (Cycle, Valid %, Best %, Mean %, ≥40 %, Unique, Total train
 * prompts), as one model: a row per cycle from its metrics, plus a pooled "all" row whose
 * valid rate carries its Wilson 95 % interval, as the paper reports the average valid rate.
 * Two renderers: plain text here (archloop status, watch) and the report's rows
 * (src/report/table.ts: HTML, CSV, charts).
 */
import { wilsonInterval } from './metrics';
import type { CycleMetrics } from './stages';

/** The paper's seven columns, then what archloop adds: validity after repair from errors. */
export const PAPER_COLUMNS = ['Cycle', 'Valid %', 'Best %', 'Mean %', '≥40 %', 'Unique', 'Total train prompts', 'After repair %'] as const;

export interface PaperRow {
  /** The cycle, or 'all' for the row pooled over the loop's cycles. */
  cycle: number | 'all';
  sampled: number;
  valid: number;
  /** Models that trained (the population of the accuracy columns). */
  trained: number;
  validRate: number;
  validRateLow: number;
  validRateHigh: number;
  validAfterRepair: number;
  /** null for cycle 0: the base model's baseline is validated at the first attempt only. */
  validAfterRepairRate: number | null;
  bestAccuracy: number | null;
  meanAccuracy: number | null;
  shareAbove40: number | null;
  unique: number;
  totalTrainPrompts: number;
  /** False while the cycle still runs (its numbers come from its rows so far). */
  finished: boolean;
}

export function paperRow(metrics: CycleMetrics, finished = true): PaperRow {
  return {
    cycle: metrics.cycle,
    sampled: metrics.sampled,
    valid: metrics.valid,
    trained: metrics.trained,
    validRate: metrics.validRate,
    validRateLow: metrics.validRateLow,
    validRateHigh: metrics.validRateHigh,
    validAfterRepair: metrics.validAfterRepair,
    validAfterRepairRate: metrics.cycle === 0 ? null : metrics.validAfterRepairRate,
    bestAccuracy: metrics.bestAccuracy,
    meanAccuracy: metrics.meanAccuracy,
    shareAbove40: metrics.shareAbove40,
    unique: metrics.admitted,
    totalTrainPrompts: metrics.totalTrainPrompts,
    finished,
  };
}

/** Pools cycle rows: rates over all samples, means weighted by trained models. */
export function pooledRow(rows: readonly PaperRow[]): PaperRow {
  const sampled = sum(rows.map((r) => r.sampled));
  const valid = sum(rows.map((r) => r.valid));
  const validAfterRepair = sum(rows.map((r) => r.validAfterRepair));
  const withAccuracy = rows.filter((r) => r.trained > 0 && r.meanAccuracy !== null);
  const trained = sum(withAccuracy.map((r) => r.trained));
  const weighted = (pick: (r: PaperRow) => number | null) =>
    trained ? sum(withAccuracy.map((r) => (pick(r) ?? 0) * r.trained)) / trained : null;
  const bests = rows.map((r) => r.bestAccuracy).filter((b): b is number => b !== null);
  const [low, high] = wilsonInterval(valid, sampled);
  return {
    cycle: 'all',
    sampled,
    valid,
    trained: sum(rows.map((r) => r.trained)),
    validRate: sampled ? valid / sampled : 0,
    validRateLow: low,
    validRateHigh: high,
    validAfterRepair,
    validAfterRepairRate: sampled ? validAfterRepair / sampled : 0,
    bestAccuracy: bests.length ? Math.max(...bests) : null,
    meanAccuracy: weighted((r) => r.meanAccuracy),
    shareAbove40: weighted((r) => r.shareAbove40),
    unique: sum(rows.map((r) => r.unique)),
    totalTrainPrompts: rows.length ? rows[rows.length - 1]!.totalTrainPrompts : 0,
    finished: rows.every((r) => r.finished),
  };
}

/** The loop's cycles: cycle 0 is the base model's baseline, before any fine-tune, not one of them. */
export const loopRows = (rows: readonly PaperRow[]) => rows.filter((r) => r.cycle !== 'all' && r.cycle > 0);

/** One row per cycle, then the pooled row over the loop's cycles. */
export function paperRows(cycles: readonly CycleMetrics[]): PaperRow[] {
  const rows = [...cycles].sort((a, b) => a.cycle - b.cycle).map((c) => paperRow(c));
  const loop = loopRows(rows);
  return [...rows, ...(loop.length ? [pooledRow(loop)] : [])];
}

/** A fraction as a percentage with two decimals (null stays null): the unit of every rendered rate. */
export function percent(fraction: number): number;
export function percent(fraction: number | null): number | null;
export function percent(fraction: number | null): number | null {
  return fraction === null ? null : Math.round(fraction * 10_000) / 100;
}

// --- the text renderer (archloop status / watch) ------------------------------------------

const cycleLabel = (row: PaperRow) => (row.cycle === 0 ? '0 (base)' : String(row.cycle));

const pct = (value: number | null) => (value === null ? '—' : (value * 100).toFixed(2));

function cells(row: PaperRow): string[] {
  const valid = row.sampled
    ? `${(row.validRate * 100).toFixed(1)} (${(row.validRateLow * 100).toFixed(1)}–${(row.validRateHigh * 100).toFixed(1)})`
    : '—';
  return [
    cycleLabel(row),
    valid,
    pct(row.bestAccuracy),
    pct(row.meanAccuracy),
    pct(row.shareAbove40),
    String(row.unique),
    String(row.totalTrainPrompts),
    row.sampled && row.validAfterRepairRate !== null ? (row.validAfterRepairRate * 100).toFixed(1) : '—',
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
