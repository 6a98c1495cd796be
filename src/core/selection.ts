/**
 * Which novel candidates of a cycle enter the corpus. Threshold mode (the paper): accuracy
 * >= minAccuracy; when fewer than fallbackMinCount qualify, the lower fallbackAccuracy
 * applies instead. Percentile mode: accuracy at or above the given percentile of the
 * cycle's novel candidates. Ties at the cut are all admitted; output is in sample order.
 */
import type { z } from 'zod';
import type { SelectionConfig } from './config';

export type SelectionSettings = z.infer<typeof SelectionConfig>;

export interface SelectionCandidate {
  id: number;
  sampleIndex: number;
  accuracy: number;
}

export interface Selection {
  admitted: SelectionCandidate[];
  /** The accuracy cut that was applied. */
  threshold: number;
  fallbackUsed: boolean;
}

/** Linear-interpolation percentile (numpy's default), p in [0, 1]. */
export function percentileOf(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const position = p * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

function atOrAbove(pool: readonly SelectionCandidate[], threshold: number): SelectionCandidate[] {
  return pool.filter((candidate) => candidate.accuracy >= threshold).sort((a, b) => a.sampleIndex - b.sampleIndex);
}

export function selectCandidates(pool: readonly SelectionCandidate[], settings: SelectionSettings): Selection {
  if (settings.mode === 'percentile') {
    if (pool.length === 0) return { admitted: [], threshold: settings.minAccuracy, fallbackUsed: false };
    const threshold = percentileOf(
      pool.map((candidate) => candidate.accuracy),
      settings.percentile,
    );
    return { admitted: atOrAbove(pool, threshold), threshold, fallbackUsed: false };
  }
  const qualified = atOrAbove(pool, settings.minAccuracy);
  if (qualified.length >= settings.fallbackMinCount) {
    return { admitted: qualified, threshold: settings.minAccuracy, fallbackUsed: false };
  }
  const threshold = settings.fallbackAccuracy;
  return { admitted: atOrAbove(pool, threshold), threshold, fallbackUsed: true };
}
