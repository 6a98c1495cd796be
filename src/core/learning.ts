/**
 * "Did it learn?": the base model (cycle 0's baseline, before any fine-tune) against the
 * seed adapter (cycle 1) and the last cycle, on valid-at-first-attempt and valid-after-repair,
 * each with its 95 % Wilson interval. Two rates differ only when their intervals are
 * disjoint; otherwise the verdict says the sample is too small to tell. Pure.
 */
import type { CycleMetrics } from './stages';

export interface Rate {
  successes: number;
  trials: number;
  rate: number;
  low: number;
  high: number;
}

export interface LearningPoint {
  label: string;
  cycle: number;
  validFirst: Rate;
  /** null for the baseline, which is not repaired. */
  validAfterRepair: Rate | null;
  meanAccuracy: number | null;
}

export type Verdict = 'better' | 'worse' | 'not distinguishable' | 'not measured';

export interface LearningComparison {
  points: LearningPoint[];
  /** The seed adapter (cycle 1) against the base model, on first-attempt validity. */
  seedVsBase: Verdict;
  /** The last cycle against cycle 1, on first-attempt validity. */
  lastVsFirst: Verdict;
}

function firstRate(m: CycleMetrics): Rate {
  return { successes: m.valid, trials: m.sampled, rate: m.validRate, low: m.validRateLow, high: m.validRateHigh };
}

function repairedRate(m: CycleMetrics): Rate {
  return { successes: m.validAfterRepair, trials: m.sampled, rate: m.validAfterRepairRate, low: m.validAfterRepairLow, high: m.validAfterRepairHigh };
}

export function compareRates(after: Rate | undefined, before: Rate | undefined): Verdict {
  if (!after || !before || after.trials === 0 || before.trials === 0) return 'not measured';
  if (after.low > before.high) return 'better';
  if (after.high < before.low) return 'worse';
  return 'not distinguishable';
}

export function learningComparison(cycles: readonly CycleMetrics[]): LearningComparison {
  const byCycle = new Map(cycles.map((m) => [m.cycle, m]));
  const base = byCycle.get(0);
  const first = byCycle.get(1);
  const sampling = cycles.filter((m) => m.cycle > 0 && m.sampled > 0).sort((a, b) => a.cycle - b.cycle);
  const last = sampling.length > 1 ? sampling[sampling.length - 1] : undefined;
  const points: LearningPoint[] = [];
  if (base && base.sampled > 0) {
    points.push({ label: 'base model (cycle 0, before fine-tuning)', cycle: 0, validFirst: firstRate(base), validAfterRepair: null, meanAccuracy: null });
  }
  if (first) points.push({ label: 'after the seed fine-tune (cycle 1)', cycle: 1, validFirst: firstRate(first), validAfterRepair: repairedRate(first), meanAccuracy: first.meanAccuracy });
  if (last) points.push({ label: `last cycle (${last.cycle})`, cycle: last.cycle, validFirst: firstRate(last), validAfterRepair: repairedRate(last), meanAccuracy: last.meanAccuracy });
  return {
    points,
    seedVsBase: compareRates(first && firstRate(first), base && base.sampled > 0 ? firstRate(base) : undefined),
    lastVsFirst: compareRates(last && firstRate(last), first && firstRate(first)),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export function formatRate(rate: Rate | null): string {
  return rate === null ? '—' : `${rate.successes}/${rate.trials} = ${pct(rate.rate)} (${pct(rate.low)}–${pct(rate.high)})`;
}

/** Plain text for `archloop status` and `watch`. */
export function formatLearning(comparison: LearningComparison): string {
  if (comparison.points.length === 0) return 'Did it learn? nothing measured yet.';
  const lines = ['Did it learn? valid programs, 95 % Wilson intervals:'];
  const width = Math.max(...comparison.points.map((p) => p.label.length));
  for (const point of comparison.points) {
    lines.push(`  ${point.label.padEnd(width)}  first attempt ${formatRate(point.validFirst)}  after repair ${formatRate(point.validAfterRepair)}`);
  }
  lines.push(`  seed fine-tune vs base model: ${comparison.seedVsBase}; last cycle vs cycle 1: ${comparison.lastVsFirst}`);
  return lines.join('\n');
}
