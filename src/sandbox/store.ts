/**
 * Reads and writes of the `candidates` columns the sandbox stages own. Writes are keyed by
 * id and guarded by status, so a retried activity rewrites the same values and never moves
 * a candidate backwards (e.g. a late validate retry cannot undo `trained`).
 */
import { z } from 'zod';
import type { Queryable } from '../db/pool';
import type { TrainingRow, ValidationRow } from './rows';

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

/** Statuses from which validation may (re)write its columns. */
const VALIDATABLE = ['sampled', 'valid', 'invalid'];
/** Statuses from which training may (re)write its columns. */
const TRAINABLE = ['valid', 'trained', 'train-failed'];

export async function storeValidation(db: Queryable, candidateId: number, row: ValidationRow): Promise<boolean> {
  const result = await db.query(
    `UPDATE candidates
        SET status = $2, valid = $3, failure_class = $4, failure_message = $5, validation = $6,
            graph_ir = $7, structural_hash = $8, params = $9, flops = $10,
            timings = timings || $11::jsonb, updated_at = now()
      WHERE id = $1 AND status = ANY($12)`,
    [
      candidateId,
      row.status,
      row.valid,
      row.failureClass,
      row.failureMessage,
      JSON.stringify(row.validation),
      row.graphIr === null ? null : JSON.stringify(row.graphIr),
      row.structuralHash,
      row.params,
      row.flops,
      JSON.stringify(row.timings),
      VALIDATABLE,
    ],
  );
  return (result.rowCount ?? 0) > 0;
}

export async function storeTraining(db: Queryable, candidateId: number, row: TrainingRow): Promise<boolean> {
  const result = await db.query(
    `UPDATE candidates
        SET status = $2, accuracy = $3, failure_class = $4, failure_message = $5, training = $6,
            timings = timings || $7::jsonb, updated_at = now()
      WHERE id = $1 AND status = ANY($8)`,
    [
      candidateId,
      row.status,
      row.accuracy,
      row.failureClass,
      row.failureMessage,
      JSON.stringify(row.training),
      JSON.stringify(row.timings),
      TRAINABLE,
    ],
  );
  return (result.rowCount ?? 0) > 0;
}
