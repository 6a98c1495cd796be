/** Shared pieces of the command line: option parsers and count lists. */
import { InvalidArgumentError } from 'commander';

/** commander's parser for an option that takes a positive integer. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** `forward 5, contract 2` (most frequent first), or `none`. */
export function formatCounts(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${n}`)
      .join(', ') || 'none'
  );
}
