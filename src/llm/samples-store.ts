/**
 * Rows written by sampling: the prompt (keyed by its hash), each candidate's raw completion
 * (stored before anything parses it), then its extracted code or extraction failure.
 * Candidates are keyed by (run, cycle, sample index), so a retried batch never duplicates.
 */
import { z } from 'zod';
import type { RenderedPrompt } from '../core/prompts';
import type { Extraction } from '../core/extract';
import type { Queryable } from '../db/pool';
import type { ChoiceUsage } from './client';

export async function storePrompt(db: Queryable, prompt: RenderedPrompt): Promise<void> {
  await db.query(
    `INSERT INTO prompts (hash, template, template_hash, body) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING`,
    [prompt.hash, prompt.template, prompt.templateHash, prompt.body],
  );
}

const SampledRow = z.object({
  id: z.number().int().positive(),
  sample_index: z.number().int().nonnegative(),
  status: z.string(),
  has_code: z.boolean(),
});
export type SampledRow = z.infer<typeof SampledRow>;

/** Candidates already stored for sample indexes [first, first + count). */
export async function sampledRows(db: Queryable, runId: string, cycle: number, first: number, count: number): Promise<SampledRow[]> {
  const { rows } = await db.query(
    `SELECT id, sample_index, status, code IS NOT NULL AS has_code FROM candidates
      WHERE run_id = $1 AND cycle = $2 AND sample_index >= $3 AND sample_index < $3 + $4
      ORDER BY sample_index`,
    [runId, cycle, first, count],
  );
  return z.array(SampledRow).parse(rows);
}

export interface RawCompletion {
  runId: string;
  cycle: number;
  sampleIndex: number;
  model: string;
  promptHash: string;
  completion: string;
  usage: ChoiceUsage & { finishReason: string | null };
}

/** Stores the raw completion; returns the row id (the existing one if a retry got here first). */
export async function storeCompletion(db: Queryable, raw: RawCompletion): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO candidates (run_id, cycle, sample_index, model, prompt_hash, completion, usage, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'sampled')
     ON CONFLICT (run_id, cycle, sample_index) DO UPDATE SET updated_at = candidates.updated_at
     RETURNING id`,
    [raw.runId, raw.cycle, raw.sampleIndex, raw.model, raw.promptHash, raw.completion, JSON.stringify(raw.usage)],
  );
  return rows[0]!.id;
}

/** Records what extraction made of a stored completion (only while it is still just sampled). */
export async function storeExtraction(db: Queryable, candidateId: number, extraction: Extraction): Promise<void> {
  if (extraction.ok) {
    await db.query(
      `UPDATE candidates SET code = $2, updated_at = now() WHERE id = $1 AND status = 'sampled' AND code IS NULL`,
      [candidateId, extraction.code],
    );
  } else {
    await db.query(
      `UPDATE candidates SET status = 'extract-failed', failure_class = $2, failure_message = $3, updated_at = now()
        WHERE id = $1 AND status = 'sampled' AND code IS NULL`,
      [candidateId, extraction.failureClass, extraction.message],
    );
  }
}

/** Completions stored but never extracted (the worker died in between): extraction is redone. */
export async function unextracted(db: Queryable, runId: string, cycle: number, first: number, count: number) {
  const { rows } = await db.query(
    `SELECT id, completion, usage->>'finishReason' AS finish_reason FROM candidates
      WHERE run_id = $1 AND cycle = $2 AND sample_index >= $3 AND sample_index < $3 + $4
        AND status = 'sampled' AND code IS NULL AND completion IS NOT NULL`,
    [runId, cycle, first, count],
  );
  return z.array(z.object({ id: z.number().int().positive(), completion: z.string(), finish_reason: z.string().nullable() })).parse(rows);
}
