/**
 * The paper's per-cycle numbers, computed from candidate rows only, so that stored
 * metrics can always be recomputed and checked against the rows they summarize.
 */
import type { CycleMetrics } from './stages';

/** The part of a candidate row the metrics depend on. */
export interface CandidateOutcome {
  /** Which sample this row is an attempt at (rows without it count as separate samples). */
  sampleIndex?: number;
  /** 0 = the first sample; > 0 = a repair or resample of it. */
  attempt?: number;
  /** Passed validation (the program is a valid model under the contract). */
  valid: boolean;
  /** Test accuracy after one epoch, null when training did not produce one. */
  accuracy: number | null;
  failureClass: string | null;
  admitted: boolean;
}

/**
 * Wilson score interval for a binomial proportion (z = 1.96 for 95 %).
 * Chosen over the normal approximation because it stays inside [0, 1] at 0 % and 100 %.
 */
export function wilsonInterval(successes: number, trials: number, z = 1.959963984540054): [number, number] {
  if (trials === 0) return [0, 0];
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * A cycle's numbers. The paper's columns count first attempts (sampled, valid %, failure
 * classes: a repaired sample keeps its first failure class); valid-after-repair counts a
 * sample valid at any attempt; accuracies cover every model that trained, repaired or not.
 */
export function computeCycleMetrics(
  cycle: number,
  outcomes: readonly CandidateOutcome[],
  totalTrainPrompts: number,
  shareThreshold = 0.4,
): CycleMetrics {
  const first = outcomes.filter((o) => (o.attempt ?? 0) === 0);
  const valid = first.filter((o) => o.valid);
  const validSamples = new Set(outcomes.filter((o) => o.valid).map((o, i) => o.sampleIndex ?? `row-${i}`));
  // Sorted, so that the float sum (and with it the stored mean) does not depend on row order.
  const accuracies = outcomes
    .filter((o) => o.valid)
    .map((o) => o.accuracy)
    .filter((a): a is number => a !== null)
    .sort((a, b) => a - b);
  const [low, high] = wilsonInterval(valid.length, first.length);
  const [repairedLow, repairedHigh] = wilsonInterval(validSamples.size, first.length);
  const failureClasses: Record<string, number> = {};
  for (const o of first) {
    if (o.failureClass) failureClasses[o.failureClass] = (failureClasses[o.failureClass] ?? 0) + 1;
  }
  return {
    cycle,
    sampled: first.length,
    valid: valid.length,
    validRate: first.length ? valid.length / first.length : 0,
    validRateLow: low,
    validRateHigh: high,
    validAfterRepair: validSamples.size,
    validAfterRepairRate: first.length ? validSamples.size / first.length : 0,
    validAfterRepairLow: repairedLow,
    validAfterRepairHigh: repairedHigh,
    repairs: outcomes.length - first.length,
    infraFailed: outcomes.filter((o) => o.failureClass === 'infra-failed').length,
    trained: accuracies.length,
    bestAccuracy: accuracies.length ? accuracies[accuracies.length - 1]! : null,
    meanAccuracy: accuracies.length ? accuracies.reduce((a, b) => a + b, 0) / accuracies.length : null,
    shareAbove40: accuracies.length ? accuracies.filter((a) => a >= shareThreshold).length / accuracies.length : null,
    admitted: outcomes.filter((o) => o.admitted).length,
    totalTrainPrompts,
    failureClasses,
  };
}
