/**
 * Novelty of a batch of programs held in memory (a comparison's samples, not a run's
 * candidates): each program against the corpus and against the earlier programs of the same
 * batch, by estimated Jaccard of its MinHash signature and, when switched on, by the graph's
 * structural hash: the loop's own rule (src/activities/novelty.ts), without the index.
 */
import type { NoveltySettings } from './fingerprint';
import { fingerprint } from './fingerprint';
import { estimateJaccard } from './minhash';

export interface JudgedProgram {
  index: number;
  code: string;
  structuralHash: string | null;
}

export interface KnownProgram {
  signature: Uint32Array;
  structuralHash: string | null;
}

/** The indexes of `programs` (in index order) that are near-duplicates of nothing before them. */
export function novelIndexes(programs: readonly JudgedProgram[], corpus: readonly KnownProgram[], settings: NoveltySettings): Set<number> {
  const seen: KnownProgram[] = [...corpus];
  const structures = new Set(settings.structural ? corpus.map((entry) => entry.structuralHash).filter(Boolean) : []);
  const novel = new Set<number>();
  for (const program of [...programs].sort((a, b) => a.index - b.index)) {
    const { signature } = fingerprint(program.code, settings);
    const duplicate =
      (settings.structural && program.structuralHash !== null && structures.has(program.structuralHash)) ||
      seen.some((known) => estimateJaccard(signature, known.signature) >= settings.threshold);
    if (!duplicate) novel.add(program.index);
    seen.push({ signature, structuralHash: program.structuralHash });
    if (program.structuralHash) structures.add(program.structuralHash);
  }
  return novel;
}
