/**
 * Rows written by sampling: the prompt (keyed by its hash), each candidate's raw completion
 * (stored before anything parses it), then its extracted code or extraction failure.
 * Candidates are keyed by (run, cycle, sample index), so a retried batch never duplicates.
 */
import { z } from 'zod';
import type { ChatMessage, RenderedPrompt } from '../core/prompts';
import type { Extraction } from '../core/extract';
import type { Queryable } from '../db/pool';
import type { ChoiceUsage } from './client';

/** Stores a prompt once, with the whole conversation sent (prefill included) when given. */
export async function storePrompt(db: Queryable, prompt: RenderedPrompt, messages?: readonly ChatMessage[]): Promise<void> {
  await db.query(
    `INSERT INTO prompts (hash, template, template_hash, body, messages) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING`,
    [prompt.hash, prompt.template, prompt.templateHash, prompt.body, messages ? JSON.stringify(messages) : null],
  );
}

const SampledRow = z.object({
  id: z.number().int().positive(),
  sample_index: z.number().int().nonnegative(),
  status: z.string(),
  has_code: z.boolean(),
});
export type SampledRow = z.infer<typeof SampledRow>;

/** First attempts already stored for sample indexes [first, first + count). */
export async function sampledRows(db: Queryable, runId: string, cycle: number, first: number, count: number): Promise<SampledRow[]> {
  const { rows } = await db.query(
    `SELECT id, sample_index, status, code IS NOT NULL AS has_code FROM candidates
      WHERE run_id = $1 AND cycle = $2 AND sample_index >= $3 AND sample_index < $3 + $4 AND attempt = 0
      ORDER BY sample_index`,
    [runId, cycle, first, count],
  );
  return z.array(SampledRow).parse(rows);
}

export interface RawCompletion {
  runId: string;
  cycle: number;
  sampleIndex: number;
  /** 0 for the first sample; a repair's attempt number otherwise (its parent is the attempt before). */
  attempt?: number;
  parentId?: number | null;
  model: string;
  promptHash: string;
  completion: string;
  /** prefilledChars: how much of the completion was the prefilled reply start (not generated). */
  usage: ChoiceUsage & { finishReason: string | null; prefilledChars?: number };
}

/** Stores the raw completion; returns the row id (the existing one if a retry got here first). */
export async function storeCompletion(db: Queryable, raw: RawCompletion): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO candidates (run_id, cycle, sample_index, attempt, parent_id, model, prompt_hash, completion, usage, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'sampled')
     ON CONFLICT (run_id, cycle, sample_index, attempt) DO UPDATE SET updated_at = candidates.updated_at
     RETURNING id`,
    [
      raw.runId,
      raw.cycle,
      raw.sampleIndex,
      raw.attempt ?? 0,
      raw.parentId ?? null,
      raw.model,
      raw.promptHash,
      // Postgres text cannot hold U+0000; an LLM can still produce it.
      raw.completion.replaceAll('\u0000', '\uFFFD'),
      JSON.stringify(raw.usage),
    ],
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
      WHERE run_id = $1 AND cycle = $2 AND sample_index >= $3 AND sample_index < $3 + $4 AND attempt = 0
        AND status = 'sampled' AND code IS NULL AND completion IS NOT NULL`,
    [runId, cycle, first, count],
  );
  return z.array(z.object({ id: z.number().int().positive(), completion: z.string(), finish_reason: z.string().nullable() })).parse(rows);
}

const RepairSource = z.object({
  id: z.number().int().positive(),
  run_id: z.string(),
  cycle: z.number().int(),
  sample_index: z.number().int(),
  attempt: z.number().int(),
  parent_id: z.number().int().nullable(),
  model: z.string(),
  code: z.string().nullable(),
  failure_class: z.string().nullable(),
  failure_message: z.string().nullable(),
  root_body: z.string().nullable(),
  root_messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).nullable(),
  root_prompt_hash: z.string().nullable(),
});
export type RepairSource = z.infer<typeof RepairSource>;

/** A failed candidate, with the design prompt of its first attempt (what resampling reuses). */
export async function repairSource(db: Queryable, candidateId: number): Promise<RepairSource> {
  const { rows } = await db.query(
    `SELECT c.id, c.run_id, c.cycle, c.sample_index, c.attempt, c.parent_id, c.model, c.code, c.failure_class, c.failure_message,
            p.body AS root_body, p.messages AS root_messages, root.prompt_hash AS root_prompt_hash
       FROM candidates c
       JOIN candidates root ON root.run_id = c.run_id AND root.cycle = c.cycle AND root.sample_index = c.sample_index AND root.attempt = 0
       LEFT JOIN prompts p ON p.hash = root.prompt_hash
      WHERE c.id = $1`,
    [candidateId],
  );
  if (rows.length === 0) throw new Error(`unknown candidate ${candidateId}`);
  return RepairSource.parse(rows[0]);
}

const AttemptRow = z.object({
  id: z.number().int().positive(),
  status: z.string(),
  has_code: z.boolean(),
  completion: z.string().nullable(),
  finish_reason: z.string().nullable(),
});

/** The row of one attempt of a sample, if it was stored already (a retried repair). */
export async function attemptRow(db: Queryable, key: { runId: string; cycle: number; sampleIndex: number; attempt: number }) {
  const { rows } = await db.query(
    `SELECT id, status, code IS NOT NULL AS has_code, completion, usage->>'finishReason' AS finish_reason FROM candidates
      WHERE run_id = $1 AND cycle = $2 AND sample_index = $3 AND attempt = $4`,
    [key.runId, key.cycle, key.sampleIndex, key.attempt],
  );
  return rows.length ? AttemptRow.parse(rows[0]) : undefined;
}
