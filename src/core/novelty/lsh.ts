/**
 * LSH banding for MinHash signatures. The band layout (b bands of r rows) is chosen from
 * the similarity threshold exactly as datasketch's MinHashLSH `_optimal_param` does:
 * minimise the weighted areas of false positives (below the threshold) and false
 * negatives (above it) of the S-curve 1 - (1 - s^r)^b.
 */
import { createHash } from 'node:crypto';
import { integrate } from './integrate';
import { signatureToBytes } from './minhash';

export interface BandLayout {
  bands: number;
  rows: number;
}

export interface LshWeights {
  falsePositive: number;
  falseNegative: number;
}

const EVEN: LshWeights = { falsePositive: 0.5, falseNegative: 0.5 };

/** Probability that a pair with Jaccard s shares at least one band. */
export function collisionProbability(s: number, { bands, rows }: BandLayout): number {
  return 1 - (1 - s ** rows) ** bands;
}

const layoutCache = new Map<string, BandLayout>();

export function optimalBandLayout(threshold: number, numPerm: number, weights: LshWeights = EVEN): BandLayout {
  if (!(threshold >= 0 && threshold <= 1)) throw new RangeError('threshold must be in [0, 1]');
  if (numPerm < 2) throw new RangeError('too few permutations for LSH');
  const key = `${threshold}:${numPerm}:${weights.falsePositive}:${weights.falseNegative}`;
  const cached = layoutCache.get(key);
  if (cached) return cached;
  let best: BandLayout = { bands: 0, rows: 0 };
  let minError = Infinity;
  for (let bands = 1; bands <= numPerm; bands++) {
    for (let rows = 1; rows <= Math.floor(numPerm / bands); rows++) {
      const layout = { bands, rows };
      const falsePositive = integrate((s) => collisionProbability(s, layout), 0, threshold);
      const falseNegative = integrate((s) => 1 - collisionProbability(s, layout), threshold, 1);
      const error = falsePositive * weights.falsePositive + falseNegative * weights.falseNegative;
      if (error < minError) {
        minError = error;
        best = layout;
      }
    }
  }
  if (best.bands < 2) throw new RangeError(`threshold ${threshold} gives fewer than 2 bands`);
  layoutCache.set(key, best);
  return best;
}

export interface BandBucket {
  band: number;
  /** 64-bit key of the band's rows (first 8 bytes of SHA-1, signed, as Postgres bigint text). */
  bucket: string;
}

/** The bucket of every band: band i covers signature positions [i*r, (i+1)*r). */
export function bandBuckets(signature: Uint32Array, { bands, rows }: BandLayout): BandBucket[] {
  if (bands * rows > signature.length) throw new RangeError('band layout exceeds the signature length');
  const out: BandBucket[] = [];
  for (let band = 0; band < bands; band++) {
    const slice = signature.subarray(band * rows, (band + 1) * rows);
    const digest = createHash('sha1').update(signatureToBytes(slice)).digest();
    out.push({ band, bucket: digest.readBigInt64LE(0).toString() });
  }
  return out;
}

/**
 * The weights archloop optimises the layout with. Every LSH candidate is confirmed by its
 * estimated Jaccard, so a false positive costs one signature comparison while a false
 * negative lets a near-duplicate into the corpus: weigh misses 99:1. At threshold 0.85
 * and 128 permutations this picks 14 bands of 9 rows (recall 0.999 at Jaccard 0.9,
 * against 0.81 for datasketch's even weights, which pick 8 bands of 16 rows).
 */
export const RECALL_WEIGHTS: LshWeights = { falsePositive: 0.01, falseNegative: 0.99 };
