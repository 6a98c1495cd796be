/** Corpus rows: idempotent upserts keyed by source_key, and the reads other stages need. */
import { z } from 'zod';
import type { Queryable } from '../db/pool';
import { teachesUnder } from './checks';

export interface SeedEntry {
  sourceKey: string;
  name: string;
  code: string;
  dataset: string;
  accuracy: number;
  licence: string;
  provenance: Record<string, unknown>;
}

export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/** Inserts new entries, rewrites changed ones, leaves identical ones untouched. */
export async function upsertSeedEntries(db: Queryable, source: string, entries: readonly SeedEntry[]): Promise<UpsertCounts> {
  if (entries.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
  const { rows } = await db.query<{ inserted: boolean }>(
    `INSERT INTO corpus (source, source_key, name, code, dataset, accuracy, licence, provenance)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[], $8::jsonb[])
     ON CONFLICT (source_key) DO UPDATE
       SET name = EXCLUDED.name, code = EXCLUDED.code, dataset = EXCLUDED.dataset,
           accuracy = EXCLUDED.accuracy, licence = EXCLUDED.licence, provenance = EXCLUDED.provenance
       WHERE corpus.source = EXCLUDED.source
         AND (corpus.name, corpus.code, corpus.dataset, corpus.accuracy, corpus.licence, corpus.provenance)
             IS DISTINCT FROM
             (EXCLUDED.name, EXCLUDED.code, EXCLUDED.dataset, EXCLUDED.accuracy, EXCLUDED.licence, EXCLUDED.provenance)
     RETURNING (xmax = 0) AS inserted`,
    [
      source,
      entries.map((e) => e.sourceKey),
      entries.map((e) => e.name),
      entries.map((e) => e.code),
      entries.map((e) => e.dataset),
      entries.map((e) => e.accuracy),
      entries.map((e) => e.licence),
      entries.map((e) => JSON.stringify(e.provenance)),
    ],
  );
  const inserted = rows.filter((row) => row.inserted).length;
  return { inserted, updated: rows.length - inserted, unchanged: entries.length - rows.length };
}

export const CorpusRow = z.object({
  id: z.number().int().positive(),
  source: z.string(),
  name: z.string().nullable(),
  code: z.string(),
  dataset: z.string().nullable(),
  accuracy: z.number().nullable(),
  run_id: z.string().nullable(),
  cycle: z.number().int().nullable(),
  prompt_hash: z.string().nullable(),
  prompt_body: z.string().nullable(),
});
export type CorpusRow = z.infer<typeof CorpusRow>;

/**
 * What the fine-tune after `cycle` learns from: the seed entries valid under the run's
 * profile (src/corpus/checks.ts) and everything this run admitted up to and including
 * `cycle` (its admissions reach the very next model, and the last cycle's are not lost).
 * Cycle 0 sees the seed only. Ordered by id (admission order).
 */
export async function corpusAsOf(db: Queryable, runId: string, cycle: number, profile: string): Promise<CorpusRow[]> {
  const { rows } = await db.query(
    `SELECT c.id, c.source, c.name, c.code, c.dataset, c.accuracy, c.run_id, c.cycle, c.prompt_hash, p.body AS prompt_body
       FROM corpus c LEFT JOIN prompts p ON p.hash = c.prompt_hash
      WHERE (c.run_id IS NULL OR (c.run_id = $1 AND c.cycle <= $2)) AND ${teachesUnder('$3')}
      ORDER BY c.id`,
    [runId, cycle, profile],
  );
  return z.array(CorpusRow).parse(rows);
}

export const ReferenceRow = z.object({
  name: z.string().nullable(),
  code: z.string(),
  accuracy: z.number(),
  dataset: z.string().nullable(),
});
export type ReferenceRow = z.infer<typeof ReferenceRow>;

/**
 * A reference architecture for a prompt: a corpus entry the run may see at this cycle,
 * accurate enough and short enough to quote. The choice is a hash of `key`, so a retried
 * batch gets the same reference and different batches spread over the corpus.
 */
export async function pickReference(
  db: Queryable,
  query: { runId: string; cycle: number; minAccuracy: number; maxChars: number; key: string; profile: string },
): Promise<ReferenceRow | undefined> {
  const { rows } = await db.query(
    `SELECT name, code, accuracy, dataset FROM corpus c
      WHERE (c.run_id IS NULL OR (c.run_id = $1 AND c.cycle < $2))
        AND c.accuracy >= $3 AND length(c.code) <= $4 AND ${teachesUnder('$6')}
      ORDER BY md5(c.id::text || $5), c.id
      LIMIT 1`,
    [query.runId, query.cycle, query.minAccuracy, query.maxChars, query.key, query.profile],
  );
  return rows.length ? ReferenceRow.parse(rows[0]) : undefined;
}
