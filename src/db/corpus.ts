/**
 * The `corpus` table and its per-profile checks (`corpus_checks`): the seed entries an
 * importer upserts, the run's admissions, and the reads the fine-tune, the prompts and the
 * metrics need. A seed entry teaches (becomes a fine-tune pair or a reference) only after it
 * validated under the run's profile (src/corpus/checks.ts); a run's own admissions always do.
 */
import { z } from 'zod';
import type { NovelCandidate } from './candidates';
import type { Queryable } from './pool';

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

/** A corpus row, every column. */
export const CorpusEntry = z.object({
  id: z.coerce.number().int(),
  source: z.string(),
  source_key: z.string(),
  name: z.string().nullable(),
  code: z.string(),
  dataset: z.string().nullable(),
  accuracy: z.number().nullable(),
  licence: z.string().nullable(),
  run_id: z.string().nullable(),
  cycle: z.number().int().nullable(),
  candidate_id: z.coerce.number().int().nullable(),
  prompt_hash: z.string().nullable(),
  structural_hash: z.string().nullable(),
  provenance: z.record(z.string(), z.any()),
  added_at: z.date(),
});
export type CorpusEntry = z.infer<typeof CorpusEntry>;

/** Corpus rows, whole, in id order: all, or those of one source or one source key. */
export async function corpusEntries(db: Queryable, filter: { source?: string; sourceKey?: string } = {}): Promise<CorpusEntry[]> {
  const { rows } = await db.query(
    `SELECT id, source, source_key, name, code, dataset, accuracy, licence, run_id, cycle, candidate_id, prompt_hash,
            structural_hash, provenance, added_at
       FROM corpus WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR source_key = $2) ORDER BY id`,
    [filter.source ?? null, filter.sourceKey ?? null],
  );
  return rows.map((row) => CorpusEntry.parse(row));
}

export interface NewCorpusEntry {
  source: string;
  sourceKey: string;
  code: string;
  name?: string | null;
  dataset?: string | null;
  accuracy?: number | null;
  licence?: string | null;
  runId?: string | null;
  cycle?: number | null;
  candidateId?: number | null;
  promptHash?: string | null;
  structuralHash?: string | null;
}

/** One corpus row as given (tests; the importer and selection have their own writers above and below); its id. */
export async function insertCorpusEntry(db: Queryable, entry: NewCorpusEntry): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO corpus (source, source_key, name, code, dataset, accuracy, licence, run_id, cycle, candidate_id, prompt_hash, structural_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
    [
      entry.source,
      entry.sourceKey,
      entry.name ?? null,
      entry.code,
      entry.dataset ?? null,
      entry.accuracy ?? null,
      entry.licence ?? null,
      entry.runId ?? null,
      entry.cycle ?? null,
      entry.candidateId ?? null,
      entry.promptHash ?? null,
      entry.structuralHash ?? null,
    ],
  );
  return Number(rows[0]!.id);
}

/** Sets an entry's accuracy (a test's stand-in for an entry changed upstream). */
export async function setCorpusAccuracy(db: Queryable, sourceKey: string, accuracy: number): Promise<void> {
  await db.query('UPDATE corpus SET accuracy = $2 WHERE source_key = $1', [sourceKey, accuracy]);
}

/** The ids of corpus entries by source key (keys not in the corpus are left out). */
export async function corpusIdsByKey(db: Queryable, sourceKeys: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: number; source_key: string }>('SELECT id, source_key FROM corpus WHERE source_key = ANY($1)', [
    sourceKeys,
  ]);
  return new Map(rows.map((row) => [row.source_key, Number(row.id)]));
}

export const CorpusRow = CorpusEntry.pick({
  id: true,
  source: true,
  name: true,
  code: true,
  dataset: true,
  accuracy: true,
  run_id: true,
  cycle: true,
  prompt_hash: true,
}).extend({
  prompt_body: z.string().nullable(),
  /**
   * An admission's design request as sent (the user turn and the prefilled reply start): the
   * first attempt's prompt, also when a repair wrote the admitted program. null for seeds.
   */
  design_messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).nullable(),
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
    `SELECT c.id, c.source, c.name, c.code, c.dataset, c.accuracy, c.run_id, c.cycle, c.prompt_hash, p.body AS prompt_body,
            dp.messages AS design_messages
       FROM corpus c LEFT JOIN prompts p ON p.hash = c.prompt_hash
       LEFT JOIN candidates admitted ON admitted.id = c.candidate_id
       LEFT JOIN candidates root ON root.run_id = admitted.run_id AND root.cycle = admitted.cycle
                                AND root.sample_index = admitted.sample_index AND root.attempt = 0
       LEFT JOIN prompts dp ON dp.hash = root.prompt_hash
      WHERE ${afterCycle('$1', '$2')} AND ${teachesUnder('$3')}
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

/** Training prompts of the fine-tune after `cycle`: how many rows corpusAsOf gives it. */
export async function corpusSizeAsOf(db: Queryable, runId: string, cycle: number, profile: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM corpus c WHERE ${afterCycle('$1', '$2')} AND ${teachesUnder('$3')}`,
    [runId, cycle, profile],
  );
  return rows[0]?.n ?? 0;
}

// --- seed checks per profile ----------------------------------------------------------

export interface CheckResult {
  corpusId: number;
  valid: boolean;
  failureClass: string | null;
  failureMessage: string | null;
  params: number | null;
  flops: number | null;
  structuralHash: string | null;
}

const Unchecked = z.object({ id: z.number().int().positive(), name: z.string().nullable(), code: z.string() });

/** Seed entries (no run) not yet checked under `profile`, in id order. */
export async function uncheckedSeeds(db: Queryable, profile: string, limit = 10_000): Promise<Array<z.infer<typeof Unchecked>>> {
  const { rows } = await db.query(
    `SELECT c.id, c.name, c.code FROM corpus c
      WHERE c.run_id IS NULL AND NOT EXISTS (SELECT 1 FROM corpus_checks k WHERE k.corpus_id = c.id AND k.profile = $1)
      ORDER BY c.id LIMIT $2`,
    [profile, limit],
  );
  return z.array(Unchecked).parse(rows);
}

export async function storeCheck(db: Queryable, profile: string, result: CheckResult): Promise<void> {
  await db.query(
    `INSERT INTO corpus_checks (corpus_id, profile, valid, failure_class, failure_message, params, flops, structural_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (corpus_id, profile) DO UPDATE
       SET valid = EXCLUDED.valid, failure_class = EXCLUDED.failure_class, failure_message = EXCLUDED.failure_message,
           params = EXCLUDED.params, flops = EXCLUDED.flops, structural_hash = EXCLUDED.structural_hash, checked_at = now()`,
    [result.corpusId, profile, result.valid, result.failureClass, result.failureMessage?.slice(0, 2000) ?? null, result.params, result.flops, result.structuralHash],
  );
}

const Summary = z.object({ failure_class: z.string().nullable(), valid: z.boolean(), n: z.number().int() });

export interface CheckSummary {
  profile: string;
  seeds: number;
  checked: number;
  kept: number;
  /** Entries left out, by failure class. */
  rejected: Record<string, number>;
}

/** How the seed corpus stands under `profile`. */
export async function checkSummary(db: Queryable, profile: string): Promise<CheckSummary> {
  const { rows } = await db.query(
    `SELECT k.failure_class, k.valid, count(*)::int AS n FROM corpus c
       JOIN corpus_checks k ON k.corpus_id = c.id AND k.profile = $1
      WHERE c.run_id IS NULL GROUP BY 1, 2`,
    [profile],
  );
  const { rows: total } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM corpus WHERE run_id IS NULL`);
  const summary: CheckSummary = { profile, seeds: total[0]?.n ?? 0, checked: 0, kept: 0, rejected: {} };
  for (const row of z.array(Summary).parse(rows)) {
    summary.checked += row.n;
    if (row.valid) summary.kept += row.n;
    else summary.rejected[row.failure_class ?? 'unknown'] = (summary.rejected[row.failure_class ?? 'unknown'] ?? 0) + row.n;
  }
  return summary;
}

export interface CorpusAdmission {
  candidate: Pick<NovelCandidate, 'id' | 'sample_index' | 'code' | 'accuracy' | 'prompt_hash' | 'structural_hash'>;
  runId: string;
  cycle: number;
  dataset: string;
  provenance: Record<string, unknown>;
}

/**
 * Adds an admitted candidate to the corpus, once (keyed by run/cycle/index). The caller
 * marks the candidate admitted in the same transaction (src/db/candidates.ts).
 */
export async function insertAdmission(db: Queryable, admission: CorpusAdmission): Promise<void> {
  const { candidate, runId, cycle } = admission;
  await db.query(
    `INSERT INTO corpus (source, source_key, name, code, dataset, accuracy, run_id, cycle, candidate_id,
                         prompt_hash, structural_hash, provenance)
     VALUES ('archloop', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (source_key) DO NOTHING`,
    [
      `${runId}/${cycle}/${candidate.sample_index}`,
      `${runId}/cycle-${cycle}/sample-${candidate.sample_index}`,
      candidate.code,
      admission.dataset,
      candidate.accuracy,
      runId,
      cycle,
      candidate.id,
      candidate.prompt_hash,
      candidate.structural_hash,
      JSON.stringify(admission.provenance),
    ],
  );
}

export const AdmittedEntry = z.object({
  source_key: z.string(),
  cycle: z.number().int().nullable(),
  candidate_id: z.coerce.number().int().nullable(),
  /** Whether the candidate it came from is marked admitted (null: no such candidate). */
  candidate_admitted: z.boolean().nullable(),
  /** "<cycle>/<sample index>" of the candidate it came from. */
  candidate_key: z.string().nullable(),
});
export type AdmittedEntry = z.infer<typeof AdmittedEntry>;

/** A run's admissions with the candidate each came from (an audit: every admission once, from an admitted candidate). */
export async function runAdmissions(db: Queryable, runId: string): Promise<AdmittedEntry[]> {
  const { rows } = await db.query(
    `SELECT e.source_key, e.cycle, e.candidate_id, c.admitted AS candidate_admitted,
            CASE WHEN c.id IS NULL THEN NULL ELSE c.cycle || '/' || c.sample_index END AS candidate_key
       FROM corpus e LEFT JOIN candidates c ON c.id = e.candidate_id WHERE e.run_id = $1`,
    [runId],
  );
  return rows.map((row) => AdmittedEntry.parse(row));
}

/** SQL condition: corpus row `c` is in the corpus after `cycle` of `run`: the seed plus the run's admissions up to and including that cycle. */
export function afterCycle(run: string, cycle: string): string {
  return `(c.run_id IS NULL OR (c.run_id = ${run} AND c.cycle <= ${cycle}))`;
}

/** SQL condition: corpus row `c` may teach under profile `$n` (this run's own admissions always may). */
export function teachesUnder(profileParam: string): string {
  return `(c.run_id IS NOT NULL OR EXISTS (SELECT 1 FROM corpus_checks k WHERE k.corpus_id = c.id AND k.profile = ${profileParam} AND k.valid))`;
}

const TeachingProgram = z.object({ code: z.string(), structural_hash: z.string().nullable() });

/** The seed programs that teach under `profile`, with the structural hash their check recorded (novelty of samples outside a run). */
export async function teachingSeedPrograms(db: Queryable, profile: string): Promise<Array<z.infer<typeof TeachingProgram>>> {
  const { rows } = await db.query(
    `SELECT c.code, k.structural_hash FROM corpus c
       JOIN corpus_checks k ON k.corpus_id = c.id AND k.profile = $1 AND k.valid
      WHERE c.run_id IS NULL ORDER BY c.id`,
    [profile],
  );
  return z.array(TeachingProgram).parse(rows);
}
