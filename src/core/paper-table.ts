/**
 * The paper's results table (Cycle, Valid %, Best %, Mean %, ≥40 %, Unique, Total train
 * prompts), as one model: a row per cycle from its metrics (`PaperRow`), plus a pooled "all"
 * row whose valid rate carries its Wilson 95 % interval, as the paper reports the average
 * valid rate, and one list of columns (`TABLE_COLUMNS`). Two renderers of them: plain text
 * here (archloop status, watch) and the report's rows in percent (`tableRow`: the HTML
 * table, CSV, JSON and charts of src/report/).
 */
import { wilsonInterval } from './metrics';
import type { CycleMetrics } from './stages';

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

// --- the columns: one list for both renderers ---------------------------------------------

const pct = (value: number | null) => (value === null ? '—' : (value * 100).toFixed(2));

interface Column<K extends string, V> {
  /** The field of the report's row (CSV, JSON, charts). */
  key: K;
  title: string;
  /** The report's value: rates in percent (two decimals), null where there is none. */
  value(row: PaperRow): V;
  /** The plain-text cell, for the columns the text table shows (the paper's, and after repair). */
  text?(row: PaperRow): string;
}

const column = <K extends string, V>(c: Column<K, V>) => c;

/** Every column in order: the paper's seven, validity after repair, then what the report adds. */
export const TABLE_COLUMNS = [
  column({ key: 'cycle', title: 'Cycle', value: (r) => r.cycle, text: (r) => (r.cycle === 0 ? '0 (base)' : String(r.cycle)) }),
  column({
    key: 'validPct',
    title: 'Valid %',
    value: (r) => percent(r.validRate),
    text: (r) =>
      r.sampled ? `${(r.validRate * 100).toFixed(1)} (${(r.validRateLow * 100).toFixed(1)}–${(r.validRateHigh * 100).toFixed(1)})` : '—',
  }),
  column({ key: 'bestPct', title: 'Best %', value: (r) => percent(r.bestAccuracy), text: (r) => pct(r.bestAccuracy) }),
  column({ key: 'meanPct', title: 'Mean %', value: (r) => percent(r.meanAccuracy), text: (r) => pct(r.meanAccuracy) }),
  column({ key: 'above40Pct', title: '≥40 %', value: (r) => percent(r.shareAbove40), text: (r) => pct(r.shareAbove40) }),
  column({ key: 'unique', title: 'Unique', value: (r) => r.unique, text: (r) => String(r.unique) }),
  column({ key: 'totalTrainPrompts', title: 'Total train prompts', value: (r) => r.totalTrainPrompts, text: (r) => String(r.totalTrainPrompts) }),
  column({
    key: 'validAfterRepairPct',
    title: 'Valid after repair %',
    // null for cycle 0, the first-attempt baseline.
    value: (r) => percent(r.validAfterRepairRate),
    text: (r) => (r.sampled && r.validAfterRepairRate !== null ? (r.validAfterRepairRate * 100).toFixed(1) : '—'),
  }),
  column({ key: 'validLowPct', title: 'Valid 95 % CI low', value: (r) => percent(r.validRateLow) }),
  column({ key: 'validHighPct', title: 'Valid 95 % CI high', value: (r) => percent(r.validRateHigh) }),
  column({ key: 'sampled', title: 'Sampled', value: (r) => r.sampled }),
  column({ key: 'valid', title: 'Valid', value: (r) => r.valid }),
  column({ key: 'trained', title: 'Trained', value: (r) => r.trained }),
  column({ key: 'finished', title: 'Finished', value: (r) => r.finished }),
] as const;

type TableColumn = (typeof TABLE_COLUMNS)[number];

/** A cycle's row as the report renders it: one field per column, rates in percent. */
export type CycleTableRow = { [C in TableColumn as C['key']]: ReturnType<C['value']> } & { cycle: number };

/** A cycle's paper-table row as the report's row (the pooled row is the report's summary, not a row). */
export function tableRow(row: PaperRow): CycleTableRow {
  if (row.cycle === 'all') throw new Error('the report table has one row per cycle; the pooled row is its summary');
  return Object.fromEntries(TABLE_COLUMNS.map((c) => [c.key, c.value(row)])) as CycleTableRow;
}

// --- the text renderer (archloop status / watch) ------------------------------------------

const TEXT_COLUMNS = TABLE_COLUMNS.flatMap((c) => (c.text ? [{ title: c.title, text: c.text }] : []));

/** The titles of the text table: the paper's seven columns, then validity after repair. */
export const TEXT_TABLE_TITLES = TEXT_COLUMNS.map((c) => c.title);

/** A plain-text table: the first column left-aligned, numbers right-aligned. */
export function formatPaperTable(cycles: readonly CycleMetrics[]): string {
  const rows = paperRows(cycles).map((row) => TEXT_COLUMNS.map((c) => c.text(row)));
  const table = [TEXT_TABLE_TITLES, ...rows];
  const widths = TEXT_TABLE_TITLES.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
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
