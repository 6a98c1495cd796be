/** Long-form data for the plots that are drawn from candidate rows rather than the table. */
import { percent } from '../core/paper-table';
import type { OutcomeRow } from '../db/candidates';

export interface AccuracyPoint {
  cycle: number;
  accuracyPct: number;
  admitted: boolean;
}

/** First-epoch accuracy of every valid, trained candidate (the population the table's Best/Mean summarize). */
export function accuracyPoints(outcomes: readonly OutcomeRow[], cycles: ReadonlySet<number>): AccuracyPoint[] {
  return outcomes
    .filter((o) => cycles.has(o.cycle) && o.valid === true && o.accuracy !== null)
    .map((o) => ({ cycle: o.cycle, accuracyPct: percent(o.accuracy as number), admitted: o.admitted }));
}

export interface FailureCount {
  cycle: number;
  failureClass: string;
  count: number;
}

/** Candidates per (cycle, failure class), ordered by cycle then by class name. */
export function failureCounts(outcomes: readonly OutcomeRow[], cycles: ReadonlySet<number>): FailureCount[] {
  const counts = new Map<string, FailureCount>();
  for (const o of outcomes) {
    if (!o.failure_class || !cycles.has(o.cycle)) continue;
    const key = JSON.stringify([o.cycle, o.failure_class]);
    const entry = counts.get(key) ?? { cycle: o.cycle, failureClass: o.failure_class, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return [...counts.values()].sort((a, b) => a.cycle - b.cycle || a.failureClass.localeCompare(b.failureClass));
}
