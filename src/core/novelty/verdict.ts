/**
 * The novelty verdict of one program from its LSH neighbours (confirmed by estimated
 * Jaccard) and an optional structural (graph-IR hash) match. Pure, so that the activity
 * only gathers inputs and records the outcome.
 */
import { estimateJaccard } from './minhash';

export type NeighbourKind = 'corpus' | 'candidate';

export interface Neighbour {
  kind: NeighbourKind;
  id: number;
  signature: Uint32Array;
}

export interface NearestNeighbour {
  kind: NeighbourKind;
  id: number;
  similarity: number;
}

export interface StructuralMatch {
  kind: NeighbourKind;
  id: number;
}

export interface NoveltyVerdict {
  novel: boolean;
  /** Why it is a duplicate: near-identical tokens, the same network structure, or both. */
  reasons: Array<'minhash' | 'structural'>;
  nearest: NearestNeighbour | null;
  structuralMatch: StructuralMatch | null;
  threshold: number;
}

/** Most similar neighbour; ties go to corpus entries before candidates, then the lowest id. */
export function nearestNeighbour(signature: Uint32Array, neighbours: readonly Neighbour[]): NearestNeighbour | null {
  let best: NearestNeighbour | null = null;
  for (const neighbour of neighbours) {
    const similarity = estimateJaccard(signature, neighbour.signature);
    const candidate = { kind: neighbour.kind, id: neighbour.id, similarity };
    if (!best || compareNearest(candidate, best) < 0) best = candidate;
  }
  return best;
}

function compareNearest(a: NearestNeighbour, b: NearestNeighbour): number {
  if (a.similarity !== b.similarity) return b.similarity - a.similarity;
  if (a.kind !== b.kind) return a.kind === 'corpus' ? -1 : 1;
  return a.id - b.id;
}

export function judgeNovelty(
  nearest: NearestNeighbour | null,
  structuralMatch: StructuralMatch | null,
  threshold: number,
): NoveltyVerdict {
  const reasons: NoveltyVerdict['reasons'] = [];
  if (nearest && nearest.similarity >= threshold) reasons.push('minhash');
  if (structuralMatch) reasons.push('structural');
  return { novel: reasons.length === 0, reasons, nearest, structuralMatch, threshold };
}
