/** k-token shingles of a token stream, and the exact Jaccard similarity of two shingle sets. */

/** Contiguous runs of k tokens joined by a space; a stream shorter than k is one shingle. */
export function shingles(tokens: readonly string[], k: number): Set<string> {
  if (!Number.isInteger(k) || k < 1) throw new RangeError('shingle size must be a positive integer');
  const out = new Set<string>();
  if (tokens.length === 0) return out;
  if (tokens.length < k) return out.add(tokens.join(' '));
  for (let i = 0; i + k <= tokens.length; i++) out.add(tokens.slice(i, i + k).join(' '));
  return out;
}

/** |A ∩ B| / |A ∪ B|; two empty sets count as identical (as their MinHash signatures do). */
export function exactJaccard(left: ReadonlySet<string>, right: ReadonlySet<string>): number {
  if (left.size === 0 && right.size === 0) return 1;
  const [small, large] = left.size <= right.size ? [left, right] : [right, left];
  let shared = 0;
  for (const item of small) if (large.has(item)) shared++;
  return shared / (left.size + right.size - shared);
}
