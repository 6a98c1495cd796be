/** Pairwise similarity of programs: MinHash estimate next to the exact shingle Jaccard. */
import type { Fingerprint } from './fingerprint';
import { estimateJaccard } from './minhash';
import { exactJaccard } from './shingles';

export interface NamedFingerprint {
  name: string;
  fingerprint: Fingerprint;
}

export interface PairSimilarity {
  a: string;
  b: string;
  estimated: number;
  exact: number;
}

/** Every unordered pair, in input order: (0,1), (0,2), …, (1,2), … */
export function pairwiseSimilarities(programs: readonly NamedFingerprint[]): PairSimilarity[] {
  const pairs: PairSimilarity[] = [];
  programs.forEach((left, i) => {
    for (const right of programs.slice(i + 1)) {
      pairs.push({
        a: left.name,
        b: right.name,
        estimated: estimateJaccard(left.fingerprint.signature, right.fingerprint.signature),
        exact: exactJaccard(left.fingerprint.shingles, right.fingerprint.shingles),
      });
    }
  });
  return pairs;
}
