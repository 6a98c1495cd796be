/**
 * checkNovelty: every trained candidate of a cycle (with an accuracy), in sample-index
 * order, against the seed corpus, this run's earlier admissions and the cycle's earlier
 * novel candidates. Near-duplicates by MinHash (LSH candidates confirmed by estimated
 * Jaccard >= threshold) or by graph-IR hash are marked duplicate; each verdict records
 * the nearest neighbour and its similarity. Idempotent: checked candidates keep their
 * verdict, the index is keyed by subject, and the order makes every verdict the same on
 * a retry.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type pg from 'pg';
import type { RunConfig } from '../core/config';
import { bandBuckets, fingerprint, judgeNovelty, nearestNeighbour, type NoveltyVerdict } from '../core/novelty';
import { CycleRef, NoveltyResult } from '../core/stages';
import { candidatesForNovelty, noveltyCounts, recordNovelty, type NoveltyCandidate } from '../db/candidates';
import { runInput } from './run-input';
import {
  addToIndex,
  corpusWithoutSignature,
  findNeighbours,
  insertBands,
  openNoveltyIndex,
  signaturesWithoutBands,
  structuralMatch,
  type NoveltyIndex,
} from '../db/novelty-index';

const BATCH = 200;

/** Indexes corpus entries in scope that have no signature yet, and signatures lacking bands of this layout. */
async function indexCorpus(pool: pg.Pool, index: NoveltyIndex, config: RunConfig, ref: CycleRef): Promise<number> {
  let indexed = 0;
  for (;;) {
    const entries = await corpusWithoutSignature(pool, index.paramsId, ref, BATCH);
    if (entries.length === 0) break;
    const records = entries.map((entry) => {
      const print = fingerprint(entry.code, config.novelty);
      return { subject: { corpusId: entry.id }, shingles: print.shingles.size, signature: print.signature };
    });
    await addToIndex(pool, index, records);
    indexed += entries.length;
    Context.current().heartbeat({ phase: 'index-corpus', indexed });
  }
  for (;;) {
    const unbanded = await signaturesWithoutBands(pool, index.paramsId, index.layout.rows, BATCH);
    if (unbanded.length === 0) break;
    const bands = unbanded.map((s) => ({ signatureId: s.id, buckets: bandBuckets(s.signature, index.layout) }));
    await insertBands(pool, index.paramsId, index.layout.rows, bands);
    Context.current().heartbeat({ phase: 'index-bands', rebanded: unbanded.length });
  }
  return indexed;
}

async function checkCandidate(
  pool: pg.Pool,
  index: NoveltyIndex,
  config: RunConfig,
  ref: CycleRef,
  candidate: NoveltyCandidate,
): Promise<NoveltyVerdict> {
  if (candidate.code === null) {
    throw ApplicationFailure.nonRetryable(`trained candidate ${candidate.id} has no code`, 'CorruptCandidate');
  }
  const print = fingerprint(candidate.code, config.novelty);
  await addToIndex(pool, index, [
    { subject: { candidateId: candidate.id }, shingles: print.shingles.size, signature: print.signature },
  ]);
  const scope = { ...ref, sampleIndex: candidate.sample_index };
  const neighbours = await findNeighbours(pool, index, print.signature, scope);
  const structural =
    config.novelty.structural && candidate.structural_hash
      ? await structuralMatch(pool, candidate.structural_hash, scope)
      : null;
  const verdict = judgeNovelty(nearestNeighbour(print.signature, neighbours), structural, config.novelty.threshold);
  await recordNovelty(pool, candidate.id, verdict.novel, {
    ...verdict,
    verdict: verdict.novel ? 'novel' : 'duplicate',
    lshCandidates: neighbours.length,
    shingles: print.shingles.size,
    signatureKey: index.key,
    layout: index.layout,
  });
  return verdict;
}

export function createNoveltyActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async checkNovelty(raw: CycleRef): Promise<NoveltyResult> {
      const { input: ref, config } = await runInput(pool, CycleRef, raw);
      const index = await openNoveltyIndex(pool, config.novelty);
      const indexed = await indexCorpus(pool, index, config, ref);
      if (indexed) log.info('corpus indexed for novelty', { ...ref, indexed, key: index.key });
      const candidates = await candidatesForNovelty(pool, ref.runId, ref.cycle);
      for (const candidate of candidates) {
        if (candidate.status !== 'trained') continue; // checked by an earlier attempt
        const verdict = await checkCandidate(pool, index, config, ref, candidate);
        Context.current().heartbeat({ phase: 'check', sampleIndex: candidate.sample_index });
        if (!verdict.novel) {
          log.info('duplicate candidate', { ...ref, candidateId: candidate.id, reasons: verdict.reasons, nearest: verdict.nearest });
        }
      }
      const result = NoveltyResult.parse(await noveltyCounts(pool, ref.runId, ref.cycle));
      log.info('novelty checked', { ...ref, ...result });
      return result;
    },
  };
}
