/**
 * "Did it learn?": the base model (cycle 0's baseline, before any fine-tune) against the
 * seed adapter (cycle 1) and the last cycle, on valid-at-first-attempt and valid-after-repair.
 *
 * Where samples are paired — the baseline's sample i and cycle 1's sample i were sampled on
 * the same prompt (and, since the baseline shares cycle 1's seeds, the same seed) — the
 * verdict is the exact McNemar test on the paired first attempts (src/core/paired.ts). The
 * last cycle against cycle 1 is never paired (their prompts quote different references),
 * so it falls back to disjoint Wilson intervals, and says so. A seed adapter that carries its
 * own measured comparison (`archloop compare base seed`, usually far larger than a run's
 * baseline) is shown beside them. Every verdict states its n. Pure.
 */
import { z } from 'zod';
import { formatPValue, formatRate, minDiscordantForSignificance, pairedComparison, type PairedOutcome, type Rate, type Verdict } from './paired';
import type { CycleMetrics } from './stages';

export { formatRate, type Rate, type Verdict } from './paired';

export interface LearningPoint {
  label: string;
  cycle: number;
  validFirst: Rate;
  /** null for the baseline, which is not repaired. */
  validAfterRepair: Rate | null;
  meanAccuracy: number | null;
}

/** A first attempt of a run: was it valid, and which prompt produced it. */
export interface FirstAttempt {
  valid: boolean;
  promptHash: string | null;
}

const RateSchema = z.object({ successes: z.number(), trials: z.number(), rate: z.number(), low: z.number(), high: z.number() });
const PairedSchema = z.object({
  n: z.number().int(),
  a: RateSchema,
  b: RateSchema,
  aOnly: z.number().int(),
  bOnly: z.number().int(),
  pValue: z.number(),
  verdict: z.enum(['better', 'worse', 'not distinguishable', 'not measured']),
  alpha: z.number(),
});

/** What a seed adapter carries: its paired comparison against the base model (src/llm/compare.ts), the parts shown. */
export const SeedComparison = z.object({
  samples: z.number().int(),
  a: z.object({ label: z.string() }),
  b: z.object({ label: z.string() }),
  firstAttempt: PairedSchema,
  afterRepair: PairedSchema,
  novelValid: PairedSchema,
  dominantFailure: z.object({ failureClass: z.string(), a: z.number(), b: z.number() }).nullable(),
});
export type SeedComparison = z.infer<typeof SeedComparison>;

export interface LearningInput {
  cycles: readonly CycleMetrics[];
  /** First attempts by cycle, then sample index. */
  firstAttempts?: ReadonlyMap<number, ReadonlyMap<number, FirstAttempt>>;
  seedComparison?: SeedComparison | null;
}

export interface LearningComparison {
  points: LearningPoint[];
  /** The seed adapter (cycle 1) against the base model on first-attempt validity: paired when the run's samples are. */
  seedVsBase: Verdict;
  /** The paired test behind seedVsBase, when the samples were paired (null: the verdict is by intervals). */
  seedVsBasePaired: PairedOutcome | null;
  /** The last cycle against cycle 1 on first-attempt validity (never paired: different prompts). */
  lastVsFirst: Verdict;
  seedComparison: SeedComparison | null;
}

function firstRate(m: CycleMetrics): Rate {
  return { successes: m.valid, trials: m.sampled, rate: m.validRate, low: m.validRateLow, high: m.validRateHigh };
}

function repairedRate(m: CycleMetrics): Rate {
  return { successes: m.validAfterRepair, trials: m.sampled, rate: m.validAfterRepairRate, low: m.validAfterRepairLow, high: m.validAfterRepairHigh };
}

/** Unpaired: two rates differ only when their 95 % intervals are disjoint. */
export function compareRates(after: Rate | undefined, before: Rate | undefined): Verdict {
  if (!after || !before || after.trials === 0 || before.trials === 0) return 'not measured';
  if (after.low > before.high) return 'better';
  if (after.high < before.low) return 'worse';
  return 'not distinguishable';
}

/** Baseline sample i against cycle 1's sample i, where both exist and were sampled on the same prompt. */
export function pairedSeedVsBase(firstAttempts: LearningInput['firstAttempts']): PairedOutcome | null {
  const base = firstAttempts?.get(0);
  const seed = firstAttempts?.get(1);
  if (!base || !seed) return null;
  const a = new Map<number, boolean>();
  const b = new Map<number, boolean>();
  for (const [index, before] of base) {
    const after = seed.get(index);
    if (!after || before.promptHash === null || before.promptHash !== after.promptHash) continue;
    a.set(index, before.valid);
    b.set(index, after.valid);
  }
  return a.size ? pairedComparison(a, b) : null;
}

export function learningComparison({ cycles, firstAttempts, seedComparison }: LearningInput): LearningComparison {
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
  const paired = pairedSeedVsBase(firstAttempts);
  return {
    points,
    seedVsBase: paired ? paired.verdict : compareRates(first && firstRate(first), base && base.sampled > 0 ? firstRate(base) : undefined),
    seedVsBasePaired: paired,
    lastVsFirst: compareRates(last && firstRate(last), first && firstRate(first)),
    seedComparison: seedComparison ?? null,
  };
}

/** One line on a paired outcome: both rates, the discordant pairs, p, the verdict. */
export function describePaired(outcome: PairedOutcome): string {
  const needs = minDiscordantForSignificance(outcome.alpha);
  const small = outcome.verdict === 'not distinguishable' && outcome.aOnly + outcome.bOnly < needs ? ` (a difference needs at least ${needs} discordant pairs)` : '';
  return `${formatRate(outcome.a)} → ${formatRate(outcome.b)}; better on ${outcome.bOnly}, worse on ${outcome.aOnly} of ${outcome.n} paired samples, exact McNemar ${formatPValue(outcome.pValue)}: ${outcome.verdict}${small}`;
}

/** Plain text for `archloop status` and `watch`. */
export function formatLearning(comparison: LearningComparison): string {
  const { seedComparison: measured } = comparison;
  if (comparison.points.length === 0 && !measured) return 'Did it learn? nothing measured yet.';
  const lines = ['Did it learn? valid programs, 95 % Wilson intervals:'];
  const width = Math.max(0, ...comparison.points.map((p) => p.label.length));
  for (const point of comparison.points) {
    lines.push(`  ${point.label.padEnd(width)}  first attempt ${formatRate(point.validFirst)}  after repair ${formatRate(point.validAfterRepair)}`);
  }
  const seedLine = comparison.seedVsBasePaired
    ? `paired on this run's prompts and seeds: ${describePaired(comparison.seedVsBasePaired)}`
    : `${comparison.seedVsBase} (unpaired, by intervals)`;
  if (comparison.points.length) {
    lines.push(`  seed fine-tune vs base model, first attempt: ${seedLine}`);
    lines.push(`  last cycle vs cycle 1: ${comparison.lastVsFirst} (unpaired: their prompts differ; by intervals)`);
  }
  if (measured) {
    lines.push(`  the seed adapter's own comparison (archloop compare, n = ${measured.samples} paired, ${measured.a.label} → ${measured.b.label}):`);
    lines.push(`    first attempt: ${describePaired(measured.firstAttempt)}`);
    lines.push(`    after repair:  ${describePaired(measured.afterRepair)}`);
    lines.push(`    novel valid:   ${describePaired(measured.novelValid)}`);
    if (measured.dominantFailure) lines.push(`    dominant failure ${measured.dominantFailure.failureClass}: ${measured.dominantFailure.a} → ${measured.dominantFailure.b}`);
  }
  return lines.join('\n');
}
