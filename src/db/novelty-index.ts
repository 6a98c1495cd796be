/**
 * The novelty index (infra/migrations/1100_novelty.sql): MinHash parameter sets,
 * signatures of corpus entries and candidates, and their LSH bands; and the lookups of
 * neighbours in scope. The verdicts themselves are stored on the candidate rows
 * (src/db/candidates.ts). Rows are parsed with zod.
 *
 * "In scope" for a candidate at (run, cycle, sample index) means: the seed corpus
 * (run_id NULL), corpus entries this run admitted in earlier cycles, and earlier
 * candidates of the same cycle that were found novel.
 */
import { z } from 'zod';
import {
  MINHASH_SEED,
  NORMALIZER_VERSION,
  bandBuckets,
  normalizeOptions,
  optimalBandLayout,
  signatureFromBytes,
  signatureKey,
  signatureToBytes,
  type BandBucket,
  type BandLayout,
  type NeighbourKind,
  type NoveltySettings,
} from '../core/novelty';
import type { Queryable } from './pool';

export interface NoveltyScope {
  runId: string;
  cycle: number;
  /** Sample index of the candidate being checked: only earlier candidates are in scope. */
  sampleIndex: number;
}

export type SignatureSubject = { corpusId: number } | { candidateId: number };

const IdRow = z.object({ id: z.number().int() });

/** Id of the parameter set under `key`, registering it on first use. */
export async function ensureMinhashParams(db: Queryable, key: string, params: unknown): Promise<number> {
  const { rows } = await db.query(
    `INSERT INTO minhash_params (key, params) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id`,
    [key, JSON.stringify(params)],
  );
  return IdRow.parse(rows[0]).id;
}

export interface SignatureRecord {
  subject: SignatureSubject;
  shingles: number;
  signature: Uint32Array;
}

/** Stores signatures (idempotent per subject and params); returns their ids in input order. */
export async function upsertSignatures(db: Queryable, paramsId: number, records: readonly SignatureRecord[]): Promise<number[]> {
  if (records.length === 0) return [];
  const corpusIds = records.map((r) => ('corpusId' in r.subject ? r.subject.corpusId : null));
  const candidateIds = records.map((r) => ('candidateId' in r.subject ? r.subject.candidateId : null));
  await db.query(
    `INSERT INTO minhash_signatures (params_id, corpus_id, candidate_id, shingles, signature)
     SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::bytea[])
     ON CONFLICT DO NOTHING`,
    [paramsId, corpusIds, candidateIds, records.map((r) => r.shingles), records.map((r) => signatureToBytes(r.signature))],
  );
  const { rows } = await db.query(
    `SELECT s.id, q.ord FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS q(corpus_id, candidate_id, ord)
       JOIN minhash_signatures s ON s.params_id = $1
        AND (s.corpus_id = q.corpus_id OR s.candidate_id = q.candidate_id)
      ORDER BY q.ord`,
    [paramsId, corpusIds, candidateIds],
  );
  return rows.map((row) => IdRow.parse(row).id);
}

export interface BandRecord {
  signatureId: number;
  buckets: readonly BandBucket[];
}

export async function insertBands(db: Queryable, paramsId: number, rowsPerBand: number, records: readonly BandRecord[]): Promise<void> {
  const flat = records.flatMap((r) => r.buckets.map((b) => ({ signatureId: r.signatureId, ...b })));
  if (flat.length === 0) return;
  await db.query(
    `INSERT INTO lsh_bands (params_id, rows_per_band, band, bucket, signature_id)
     SELECT $1, $2, * FROM unnest($3::smallint[], $4::bigint[], $5::bigint[])
     ON CONFLICT DO NOTHING`,
    [paramsId, rowsPerBand, flat.map((f) => f.band), flat.map((f) => f.bucket), flat.map((f) => f.signatureId)],
  );
}

const CodeRow = z.object({ id: z.number().int(), code: z.string() });

/** Seed and earlier-admitted corpus entries of the scope that have no signature yet. */
export async function corpusWithoutSignature(
  db: Queryable,
  paramsId: number,
  scope: Pick<NoveltyScope, 'runId' | 'cycle'>,
  limit: number,
): Promise<Array<z.infer<typeof CodeRow>>> {
  const { rows } = await db.query(
    `SELECT c.id, c.code FROM corpus c
      WHERE (c.run_id IS NULL OR (c.run_id = $2 AND c.cycle < $3))
        AND NOT EXISTS (SELECT 1 FROM minhash_signatures s WHERE s.params_id = $1 AND s.corpus_id = c.id)
      ORDER BY c.id LIMIT $4`,
    [paramsId, scope.runId, scope.cycle, limit],
  );
  return rows.map((row) => CodeRow.parse(row));
}

const SignatureRow = z.object({ id: z.number().int(), signature: z.instanceof(Buffer) });

/** Signatures under `paramsId` whose bands at `rowsPerBand` are not indexed yet. */
export async function signaturesWithoutBands(
  db: Queryable,
  paramsId: number,
  rowsPerBand: number,
  limit: number,
): Promise<Array<{ id: number; signature: Uint32Array }>> {
  const { rows } = await db.query(
    `SELECT s.id, s.signature FROM minhash_signatures s
      WHERE s.params_id = $1
        AND NOT EXISTS (SELECT 1 FROM lsh_bands b
                         WHERE b.signature_id = s.id AND b.rows_per_band = $2 AND b.params_id = $1)
      ORDER BY s.id LIMIT $3`,
    [paramsId, rowsPerBand, limit],
  );
  return rows.map((row) => {
    const parsed = SignatureRow.parse(row);
    return { id: parsed.id, signature: signatureFromBytes(parsed.signature) };
  });
}

const NeighbourRow = z.object({
  corpus_id: z.number().int().nullable(),
  candidate_id: z.number().int().nullable(),
  signature: z.instanceof(Buffer),
});

export interface StoredNeighbour {
  kind: NeighbourKind;
  id: number;
  signature: Uint32Array;
}

function neighbourOf(row: unknown): StoredNeighbour {
  const parsed = NeighbourRow.parse(row);
  const signature = signatureFromBytes(parsed.signature);
  return parsed.corpus_id !== null
    ? { kind: 'corpus', id: parsed.corpus_id, signature }
    : { kind: 'candidate', id: parsed.candidate_id!, signature };
}

/** SQL condition on `co` (corpus) and `ca` (candidates) joined to a signature; $run, $cycle, $index are placeholders. */
function inScope(run: string, cycle: string, index: string): string {
  return `((co.id IS NOT NULL AND (co.run_id IS NULL OR (co.run_id = ${run} AND co.cycle < ${cycle})))
        OR (ca.id IS NOT NULL AND ca.run_id = ${run} AND ca.cycle = ${cycle} AND ca.sample_index < ${index} AND ca.novel))`;
}

/** Signatures in scope that share at least one LSH bucket with `buckets`. */
export async function lshNeighbours(
  db: Queryable,
  paramsId: number,
  rowsPerBand: number,
  buckets: readonly BandBucket[],
  scope: NoveltyScope,
): Promise<StoredNeighbour[]> {
  // A named (prepared) statement: planning costs more than executing this query.
  const { rows } = await db.query({
    name: 'novelty-lsh-neighbours',
    text: `WITH hits AS (
       SELECT DISTINCT b.signature_id
         FROM unnest($3::smallint[], $4::bigint[]) AS q(band, bucket)
         JOIN lsh_bands b ON b.params_id = $1 AND b.rows_per_band = $2 AND b.band = q.band AND b.bucket = q.bucket)
     SELECT s.corpus_id, s.candidate_id, s.signature
       FROM hits JOIN minhash_signatures s ON s.id = hits.signature_id AND s.params_id = $1
       LEFT JOIN corpus co ON co.id = s.corpus_id
       LEFT JOIN candidates ca ON ca.id = s.candidate_id
      WHERE ${inScope('$5', '$6', '$7')}`,
    values: [
      paramsId,
      rowsPerBand,
      buckets.map((b) => b.band),
      buckets.map((b) => b.bucket),
      scope.runId,
      scope.cycle,
      scope.sampleIndex,
    ],
  });
  return rows.map(neighbourOf);
}

/** Every signature in scope (the brute-force baseline of the benchmark and tests). */
export async function allNeighbours(db: Queryable, paramsId: number, scope: NoveltyScope): Promise<StoredNeighbour[]> {
  const { rows } = await db.query(
    `SELECT s.corpus_id, s.candidate_id, s.signature
       FROM minhash_signatures s
       LEFT JOIN corpus co ON co.id = s.corpus_id
       LEFT JOIN candidates ca ON ca.id = s.candidate_id
      WHERE s.params_id = $1 AND ${inScope('$2', '$3', '$4')}`,
    [paramsId, scope.runId, scope.cycle, scope.sampleIndex],
  );
  return rows.map(neighbourOf);
}

const MatchRow = z.object({ kind: z.enum(['corpus', 'candidate']), id: z.number().int() });

/** A corpus entry or earlier novel candidate in scope with the same graph-IR hash. */
export async function structuralMatch(
  db: Queryable,
  structuralHash: string,
  scope: NoveltyScope,
): Promise<{ kind: NeighbourKind; id: number } | null> {
  const { rows } = await db.query(
    `(SELECT 'corpus' AS kind, id FROM corpus
       WHERE structural_hash = $1 AND (run_id IS NULL OR (run_id = $2 AND cycle < $3))
       ORDER BY id LIMIT 1)
     UNION ALL
     (SELECT 'candidate', id FROM candidates
       WHERE structural_hash = $1 AND run_id = $2 AND cycle = $3 AND sample_index < $4 AND novel
       ORDER BY sample_index LIMIT 1)`,
    [structuralHash, scope.runId, scope.cycle, scope.sampleIndex],
  );
  return rows.length ? MatchRow.parse(rows[0]) : null;
}

/** Where a run's signatures live: its MinHash parameter set and its LSH band layout. */
export interface NoveltyIndex {
  paramsId: number;
  key: string;
  layout: BandLayout;
}

export async function openNoveltyIndex(db: Queryable, settings: NoveltySettings): Promise<NoveltyIndex> {
  const key = signatureKey(settings);
  const params = {
    scheme: 'affine32',
    seed: MINHASH_SEED,
    numPerm: settings.numPerm,
    shingleSize: settings.shingleSize,
    normalizerVersion: NORMALIZER_VERSION,
    normalize: normalizeOptions(settings),
  };
  const paramsId = await ensureMinhashParams(db, key, params);
  return { paramsId, key, layout: optimalBandLayout(settings.threshold, settings.numPerm, {
      falsePositive: 1 - settings.lshFalseNegativeWeight,
      falseNegative: settings.lshFalseNegativeWeight,
    }),
  };
}

/** Stores signatures and their band buckets; returns the signature ids in input order. */
export async function addToIndex(db: Queryable, index: NoveltyIndex, records: readonly SignatureRecord[]): Promise<number[]> {
  const ids = await upsertSignatures(db, index.paramsId, records);
  await insertBands(
    db,
    index.paramsId,
    index.layout.rows,
    records.map((record, i) => ({ signatureId: ids[i]!, buckets: bandBuckets(record.signature, index.layout) })),
  );
  return ids;
}

/** LSH candidates in scope for a signature (unconfirmed: the caller compares signatures). */
export function findNeighbours(
  db: Queryable,
  index: NoveltyIndex,
  signature: Uint32Array,
  scope: NoveltyScope,
): Promise<StoredNeighbour[]> {
  return lshNeighbours(db, index.paramsId, index.layout.rows, bandBuckets(signature, index.layout), scope);
}

/** How many signatures and band rows the index holds, over every parameter set (an audit: a retry adds none). */
export async function indexSize(db: Queryable): Promise<{ signatures: number; bands: number }> {
  const { rows } = await db.query<{ signatures: number; bands: number }>(
    'SELECT (SELECT count(*)::int FROM minhash_signatures) AS signatures, (SELECT count(*)::int FROM lsh_bands) AS bands',
  );
  return rows[0]!;
}
