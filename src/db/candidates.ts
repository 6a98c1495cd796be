/**
 * The `candidates` table: one row per attempt at a sample, keyed by (run, cycle, sample
 * index, attempt). Each stage writes its own columns, keyed by id and guarded by status, so
 * a retried activity rewrites the same values and never moves a candidate backwards (a
 * late validate retry cannot undo `trained`; a verdict is recorded once).
 */
import { z } from 'zod';
import { parseConfig, type RunConfig } from '../core/config';
import type { Extraction } from '../core/extract';
import { computeCycleMetrics, type CandidateOutcome } from '../core/metrics';
import type { CycleMetrics } from '../core/stages';
import type { SandboxMode, TrainOutcome, ValidateOutcome } from '../core/sandbox';
import { storableText } from '../core/storable-text';
import type { Queryable } from './pool';

// --- written by sampling and repair ---------------------------------------------------

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
  usage: object & { finishReason: string | null; prefilledChars?: number };
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
      storableText(raw.completion),
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

// --- read and written by the sandbox stages (validate, train) -----------------------

/** What validation stores (built from the runner's outcome by src/sandbox/rows.ts). */
export interface ValidationRow {
  status: 'valid' | 'invalid';
  sandboxMode: SandboxMode | null;
  valid: boolean;
  failureClass: string | null;
  failureMessage: string | null;
  /** The whole outcome except the graph (which has its own column). */
  validation: Omit<ValidateOutcome, 'graph'>;
  graphIr: ValidateOutcome['graph'];
  structuralHash: string | null;
  params: number | null;
  flops: number | null;
  timings: { validate: Record<string, number> };
}

/** What training stores. */
export interface TrainingRow {
  status: 'trained' | 'train-failed';
  sandboxMode: SandboxMode | null;
  accuracy: number | null;
  failureClass: string | null;
  failureMessage: string | null;
  training: TrainOutcome;
  timings: { train: Record<string, number> };
}

const CandidateRow = z.object({
  id: z.number().int(),
  code: z.string().nullable(),
  status: z.string(),
  valid: z.boolean().nullable(),
  accuracy: z.number().nullable(),
  failure_class: z.string().nullable(),
  has_validation: z.boolean(),
  has_training: z.boolean(),
});
export type CandidateRow = z.infer<typeof CandidateRow>;

export async function loadCandidate(db: Queryable, candidateId: number): Promise<CandidateRow> {
  const { rows } = await db.query(
    `SELECT id, code, status, valid, accuracy, failure_class,
            validation IS NOT NULL AS has_validation, training IS NOT NULL AS has_training
       FROM candidates WHERE id = $1`,
    [candidateId],
  );
  if (rows.length === 0) throw new Error(`unknown candidate ${candidateId}`);
  return CandidateRow.parse(rows[0]);
}

/** What a sandbox stage stores: its row (src/sandbox/rows.ts), tagged with the stage. */
export type StageResult = { stage: 'validate'; row: ValidationRow } | { stage: 'train'; row: TrainingRow };

/**
 * Per stage: the statuses from which it may (re)write its columns, and its own columns.
 * Column names come from here only, never from input.
 */
const STAGE_WRITES = {
  validate: {
    from: ['sampled', 'valid', 'invalid'],
    columns: (row: ValidationRow) => ({
      valid: row.valid,
      validation: JSON.stringify(row.validation),
      graph_ir: row.graphIr === null ? null : JSON.stringify(row.graphIr),
      structural_hash: row.structuralHash,
      params: row.params,
      flops: row.flops,
    }),
  },
  train: {
    from: ['valid', 'trained', 'train-failed'],
    columns: (row: TrainingRow) => ({ accuracy: row.accuracy, training: JSON.stringify(row.training) }),
  },
} as const;

/** Stores a stage's outcome; false when the row had already moved past that stage. */
export async function storeStageResult(db: Queryable, candidateId: number, result: StageResult): Promise<boolean> {
  const own = result.stage === 'validate' ? STAGE_WRITES.validate.columns(result.row) : STAGE_WRITES.train.columns(result.row);
  const values: Record<string, unknown> = {
    status: result.row.status,
    failure_class: result.row.failureClass,
    failure_message: result.row.failureMessage,
    ...own,
  };
  const names = Object.keys(values);
  const set = names.map((name, i) => `${name} = $${i + 2}`).join(', ');
  const outcome = await db.query(
    `UPDATE candidates SET ${set}, timings = timings || $${names.length + 2}::jsonb, updated_at = now()
      WHERE id = $1 AND status = ANY($${names.length + 3})`,
    [candidateId, ...Object.values(values), JSON.stringify(result.row.timings), STAGE_WRITES[result.stage].from],
  );
  return (outcome.rowCount ?? 0) > 0;
}

/** A candidate whose stage activity failed for good: only one still in flight changes (a stored result stays). */
export async function markInfraFailed(db: Queryable, candidateId: number, message: string): Promise<void> {
  await db.query(
    `UPDATE candidates SET status = 'infra-failed', failure_class = 'infra-failed', failure_message = $2, updated_at = now()
      WHERE id = $1 AND status IN ('sampled', 'valid')`,
    [candidateId, message.slice(0, 4000)],
  );
}

/** The run config of the run a candidate belongs to, and the candidate's key. */
export async function loadCandidateContext(
  db: Queryable,
  candidateId: number,
): Promise<{ runId: string; cycle: number; sampleIndex: number; config: RunConfig }> {
  const { rows } = await db.query<{ run_id: string; cycle: number; sample_index: number; config: unknown }>(
    `SELECT c.run_id, c.cycle, c.sample_index, r.config
       FROM candidates c JOIN runs r ON r.id = c.run_id WHERE c.id = $1`,
    [candidateId],
  );
  const row = rows[0];
  if (!row) throw new Error(`unknown candidate ${candidateId}`);
  return { runId: row.run_id, cycle: row.cycle, sampleIndex: row.sample_index, config: parseConfig(row.config) };
}

// --- novelty verdicts and admission ---------------------------------------------------

const NoveltyCandidateRow = z.object({
  id: z.number().int(),
  sample_index: z.number().int(),
  status: z.string(),
  code: z.string().nullable(),
  structural_hash: z.string().nullable(),
});
export type NoveltyCandidate = z.infer<typeof NoveltyCandidateRow>;

/** Trained candidates of the cycle with an accuracy, checked or not, in sample order. */
export async function candidatesForNovelty(db: Queryable, runId: string, cycle: number): Promise<NoveltyCandidate[]> {
  const { rows } = await db.query(
    `SELECT id, sample_index, status, code, structural_hash FROM candidates
      WHERE run_id = $1 AND cycle = $2 AND accuracy IS NOT NULL
        AND status IN ('trained', 'novel', 'duplicate', 'admitted')
      ORDER BY sample_index`,
    [runId, cycle],
  );
  return rows.map((row) => NoveltyCandidateRow.parse(row));
}

/** Records a verdict once: only a candidate still in status 'trained' is updated. */
export async function recordNovelty(db: Queryable, candidateId: number, novel: boolean, novelty: unknown): Promise<void> {
  await db.query(
    `UPDATE candidates
        SET novel = $2, status = CASE WHEN $2 THEN 'novel' ELSE 'duplicate' END,
            failure_class = CASE WHEN $2 THEN failure_class ELSE 'duplicate' END,
            novelty = $3, updated_at = now()
      WHERE id = $1 AND status = 'trained'`,
    [candidateId, novel, JSON.stringify(novelty)],
  );
}

const CountsRow = z.object({ checked: z.number().int(), novel: z.number().int(), duplicates: z.number().int() });

export async function noveltyCounts(db: Queryable, runId: string, cycle: number): Promise<z.infer<typeof CountsRow>> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS checked,
            count(*) FILTER (WHERE novel)::int AS novel,
            count(*) FILTER (WHERE NOT novel)::int AS duplicates
       FROM candidates WHERE run_id = $1 AND cycle = $2 AND novel IS NOT NULL`,
    [runId, cycle],
  );
  return CountsRow.parse(rows[0]);
}

const NovelCandidateRow = z.object({
  id: z.number().int(),
  sample_index: z.number().int(),
  accuracy: z.number(),
  code: z.string(),
  model: z.string(),
  prompt_hash: z.string().nullable(),
  structural_hash: z.string().nullable(),
  novelty: z.unknown(),
});
export type NovelCandidate = z.infer<typeof NovelCandidateRow>;

/** Candidates of the cycle found novel (admitted ones included, for idempotent retries). */
export async function novelCandidates(db: Queryable, runId: string, cycle: number): Promise<NovelCandidate[]> {
  const { rows } = await db.query(
    `SELECT id, sample_index, accuracy, code, model, prompt_hash, structural_hash, novelty FROM candidates
      WHERE run_id = $1 AND cycle = $2 AND novel AND accuracy IS NOT NULL AND code IS NOT NULL
      ORDER BY sample_index`,
    [runId, cycle],
  );
  return rows.map((row) => NovelCandidateRow.parse(row));
}


/** Marks an admitted candidate (its corpus row is written in the same transaction: src/db/corpus.ts). */
export async function markAdmitted(db: Queryable, candidateId: number): Promise<void> {
  await db.query(`UPDATE candidates SET admitted = true, status = 'admitted', updated_at = now() WHERE id = $1 AND NOT admitted`, [
    candidateId,
  ]);
}

// --- whole rows: what inspection and the tests read and write -------------------------

/** A candidate row, every column (JSON columns as stored). */
export const CandidateRecord = z.object({
  id: z.coerce.number().int(),
  run_id: z.string(),
  cycle: z.number().int(),
  sample_index: z.number().int(),
  attempt: z.number().int(),
  parent_id: z.coerce.number().int().nullable(),
  model: z.string(),
  prompt_hash: z.string().nullable(),
  completion: z.string().nullable(),
  code: z.string().nullable(),
  status: z.string(),
  valid: z.boolean().nullable(),
  novel: z.boolean().nullable(),
  admitted: z.boolean(),
  failure_class: z.string().nullable(),
  failure_message: z.string().nullable(),
  usage: z.any(),
  validation: z.any(),
  training: z.any(),
  graph_ir: z.any(),
  structural_hash: z.string().nullable(),
  params: z.coerce.number().nullable(),
  flops: z.number().nullable(),
  accuracy: z.number().nullable(),
  novelty: z.any(),
  timings: z.any(),
});
export type CandidateRecord = z.infer<typeof CandidateRecord>;

/** Candidate rows, whole, of a run (or one of its cycles) or by id, in cycle, sample and attempt order. */
export async function candidateRecords(db: Queryable, filter: { runId?: string; cycle?: number; id?: number }): Promise<CandidateRecord[]> {
  const { rows } = await db.query(
    `SELECT id, run_id, cycle, sample_index, attempt, parent_id, model, prompt_hash, completion, code, status, valid, novel,
            admitted, failure_class, failure_message, usage, validation, training, graph_ir, structural_hash, params, flops,
            accuracy, novelty, timings
       FROM candidates
      WHERE ($1::text IS NULL OR run_id = $1) AND ($2::int IS NULL OR cycle = $2) AND ($3::bigint IS NULL OR id = $3)
      ORDER BY cycle, sample_index, attempt, id`,
    [filter.runId ?? null, filter.cycle ?? null, filter.id ?? null],
  );
  return rows.map((row) => CandidateRecord.parse(row));
}

/** A candidate row, whole; throws when there is none. */
export async function candidateRecord(db: Queryable, id: number): Promise<CandidateRecord> {
  const [row] = await candidateRecords(db, { id });
  if (!row) throw new Error(`unknown candidate ${id}`);
  return row;
}

/** Columns a row can be written with directly (a fixture, a correction): names from here only, never from input. */
const WRITABLE = [
  'parent_id', 'model', 'prompt_hash', 'completion', 'code', 'status', 'valid', 'novel', 'admitted', 'failure_class',
  'failure_message', 'usage', 'validation', 'training', 'graph_ir', 'structural_hash', 'params', 'flops', 'accuracy', 'novelty',
] as const;
const JSON_COLUMNS = new Set(['usage', 'validation', 'training', 'graph_ir', 'novelty']);
export type CandidateFields = Partial<Pick<CandidateRecord, (typeof WRITABLE)[number]>>;

function writable(fields: CandidateFields): Array<[string, unknown]> {
  return WRITABLE.filter((name) => fields[name] !== undefined).map((name) => {
    const value = fields[name];
    return [name, JSON_COLUMNS.has(name) && value !== null ? JSON.stringify(value) : value];
  });
}

/**
 * A candidate row in whatever state the caller gives it, without going through the stages
 * (tests of one stage start from rows the earlier stages would have written).
 */
export async function insertCandidate(
  db: Queryable,
  key: { runId: string; cycle: number; sampleIndex: number; attempt?: number; model: string },
  fields: CandidateFields = {},
): Promise<number> {
  const columns = writable(fields).filter(([name]) => name !== 'model');
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO candidates (run_id, cycle, sample_index, attempt, model${columns.map(([name]) => `, ${name}`).join('')})
     VALUES ($1, $2, $3, $4, $5${columns.map((_, i) => `, $${i + 6}`).join('')}) RETURNING id`,
    [key.runId, key.cycle, key.sampleIndex, key.attempt ?? 0, key.model, ...columns.map(([, value]) => value)],
  );
  return Number(rows[0]!.id);
}

/** Overwrites columns of a candidate row as given (a test's setup, e.g. a state a crash would leave). */
export async function updateCandidate(db: Queryable, id: number, fields: CandidateFields): Promise<void> {
  const columns = writable(fields);
  if (columns.length === 0) return;
  await db.query(
    `UPDATE candidates SET ${columns.map(([name], i) => `${name} = $${i + 2}`).join(', ')}, updated_at = now() WHERE id = $1`,
    [id, ...columns.map(([, value]) => value)],
  );
}

/** Deletes one candidate row (and its repairs). */
export async function deleteCandidate(db: Queryable, id: number): Promise<void> {
  await db.query('DELETE FROM candidates WHERE id = $1', [id]);
}

// --- outcomes: what the metrics, the paper table and the report read -------------------

/** The columns of a candidate that the per-cycle numbers and plots depend on. */
export const OutcomeRow = CandidateRecord.pick({
  cycle: true,
  status: true,
  sample_index: true,
  attempt: true,
  valid: true,
  novel: true,
  admitted: true,
  failure_class: true,
  accuracy: true,
});
export type OutcomeRow = z.infer<typeof OutcomeRow>;

/** The one mapping from a candidate row to what the metrics count. */
export function outcomeOf(row: OutcomeRow): CandidateOutcome {
  return {
    sampleIndex: row.sample_index,
    attempt: row.attempt,
    valid: row.valid === true,
    accuracy: row.accuracy,
    failureClass: row.failure_class,
    admitted: row.admitted,
  };
}

/**
 * The one way from candidate rows to a cycle's metrics: the rows of `cycle` among `rows`
 * (the cycle's own, or a whole run's). Bookkeeping stores it when a cycle finishes; the
 * report computes it for a cycle still running.
 */
export function cycleMetricsOfRows(cycle: number, rows: readonly OutcomeRow[], totalTrainPrompts: number): CycleMetrics {
  return computeCycleMetrics(cycle, rows.filter((row) => row.cycle === cycle).map(outcomeOf), totalTrainPrompts);
}

/** Every attempt of a run (or of one of its cycles), in cycle, sample and attempt order. */
export async function outcomeRows(db: Queryable, runId: string, cycle?: number): Promise<OutcomeRow[]> {
  const { rows } = await db.query(
    `SELECT cycle, sample_index, attempt, status, valid, novel, admitted, failure_class, accuracy
       FROM candidates WHERE run_id = $1 AND ($2::int IS NULL OR cycle = $2) ORDER BY cycle, sample_index, attempt`,
    [runId, cycle ?? null],
  );
  return z.array(OutcomeRow).parse(rows);
}

const ValidatedRow = z.object({
  cycle: z.number().int(),
  valid: z.boolean().nullable(),
  /** The runner's timings of validation (src/sandbox/rows.ts), in seconds. */
  timings: z.record(z.string(), z.number().nullable()),
});
export type ValidatedRow = z.infer<typeof ValidatedRow>;

/** Every candidate of a run that has a stored validation, with that validation's timings. */
export async function validatedRows(db: Queryable, runId: string): Promise<ValidatedRow[]> {
  const { rows } = await db.query(
    `SELECT cycle, valid, coalesce(timings->'validate', '{}'::jsonb) AS timings FROM candidates
      WHERE run_id = $1 AND validation IS NOT NULL ORDER BY cycle, sample_index, attempt`,
    [runId],
  );
  return rows.map((row) => ValidatedRow.parse(row));
}

export const ArchitectureRow = z.object({
  id: z.coerce.number().int(),
  cycle: z.number().int(),
  sample_index: z.number().int(),
  status: z.string(),
  novel: z.boolean().nullable(),
  admitted: z.boolean(),
  accuracy: z.number(),
  params: z.coerce.number().nullable(),
  flops: z.number().nullable(),
  code: z.string().nullable(),
  graph_ir: z.unknown(),
});
export type ArchitectureRow = z.infer<typeof ArchitectureRow>;

/** The run's most accurate valid, trained candidates; ties go to the earlier one. */
export async function topArchitectures(db: Queryable, runId: string, count: number): Promise<ArchitectureRow[]> {
  const { rows } = await db.query(
    `SELECT id, cycle, sample_index, status, novel, admitted, accuracy, params, flops, code, graph_ir
       FROM candidates
      WHERE run_id = $1 AND valid AND accuracy IS NOT NULL
      ORDER BY accuracy DESC, cycle, sample_index
      LIMIT $2`,
    [runId, count],
  );
  return z.array(ArchitectureRow).parse(rows);
}
