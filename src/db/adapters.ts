/** Rows of `adapters`: one LoRA adapter per (run, cycle), from training to published. */
import { z } from 'zod';
import type { Queryable } from './pool';

export const AdapterRow = z.object({
  id: z.number().int().positive(),
  run_id: z.string(),
  cycle: z.number().int().nonnegative(),
  path: z.string(),
  base_model: z.string(),
  parent_id: z.number().int().positive().nullable(),
  data_hash: z.string().nullable(),
  manifest: z.record(z.string(), z.unknown()),
  model_name: z.string().nullable(),
  status: z.enum(['training', 'ready', 'published']),
});
export type AdapterRow = z.infer<typeof AdapterRow>;

const COLUMNS = 'id, run_id, cycle, path, base_model, parent_id, data_hash, manifest, model_name, status';

export async function adapterById(db: Queryable, id: number): Promise<AdapterRow | undefined> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM adapters WHERE id = $1`, [id]);
  return rows.length ? AdapterRow.parse(rows[0]) : undefined;
}

export async function adapterByModelName(db: Queryable, modelName: string): Promise<AdapterRow | undefined> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM adapters WHERE model_name = $1 ORDER BY id LIMIT 1`, [modelName]);
  return rows.length ? AdapterRow.parse(rows[0]) : undefined;
}

/** Every adapter of a run, by cycle. */
export async function runAdapters(db: Queryable, runId: string): Promise<AdapterRow[]> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM adapters WHERE run_id = $1 ORDER BY cycle`, [runId]);
  return rows.map((row) => AdapterRow.parse(row));
}

export interface TrainingAdapter {
  runId: string;
  cycle: number;
  path: string;
  baseModel: string;
  parentId: number | null;
  dataHash: string;
}

/**
 * The (run, cycle) adapter row for this training set. Status only moves forward
 * (training → ready → published): a finished row is returned as it is (the retry has
 * nothing to do, even when the seed corpus has changed since: the adapter that exists is
 * the one later cycles build on); an unfinished one is (re)claimed for this data.
 */
export async function upsertTrainingAdapter(db: Queryable, adapter: TrainingAdapter): Promise<AdapterRow> {
  await db.query(
    `INSERT INTO adapters (run_id, cycle, path, base_model, parent_id, data_hash, status)
     VALUES ($1, $2, $3, $4, $5, $6, 'training')
     ON CONFLICT (run_id, cycle) DO UPDATE
       SET path = EXCLUDED.path, base_model = EXCLUDED.base_model, parent_id = EXCLUDED.parent_id,
           data_hash = EXCLUDED.data_hash, model_name = NULL, manifest = '{}'::jsonb
       WHERE adapters.status = 'training'`,
    [adapter.runId, adapter.cycle, adapter.path, adapter.baseModel, adapter.parentId, adapter.dataHash],
  );
  const { rows: current } = await db.query(`SELECT ${COLUMNS} FROM adapters WHERE run_id = $1 AND cycle = $2`, [adapter.runId, adapter.cycle]);
  return AdapterRow.parse(current[0]);
}

/** An adapter status change that would move backwards or skip a step (a bug, never retried). */
export class AdapterStatusError extends Error {
  override name = 'AdapterStatusError';
}

/**
 * training → ready. A row that is already ready or published stays as it is: a late
 * attempt (an orphaned trainer's activity finishing after its retry) must not undo a publish.
 */
export async function markAdapterReady(db: Queryable, id: number, path: string, manifest: Record<string, unknown>): Promise<AdapterRow> {
  const { rows } = await db.query(
    `UPDATE adapters SET status = 'ready', path = $2, manifest = $3 WHERE id = $1 AND status = 'training'
     RETURNING ${COLUMNS}`,
    [id, path, JSON.stringify(manifest)],
  );
  if (rows.length) return AdapterRow.parse(rows[0]);
  const row = await adapterById(db, id);
  if (!row) throw new AdapterStatusError(`adapter ${id} does not exist`);
  return row;
}

/** ready → published under `modelName`; publishing again keeps the first name. */
export async function markAdapterPublished(db: Queryable, id: number, modelName: string): Promise<AdapterRow> {
  const { rows } = await db.query(
    `UPDATE adapters SET status = 'published', model_name = $2 WHERE id = $1 AND status = 'ready'
     RETURNING ${COLUMNS}`,
    [id, modelName],
  );
  if (rows.length) return AdapterRow.parse(rows[0]);
  const row = await adapterById(db, id);
  if (!row) throw new AdapterStatusError(`adapter ${id} does not exist`);
  if (row.status !== 'published') throw new AdapterStatusError(`adapter ${id} is still training: it cannot be published`);
  return row;
}

/** Adds the gate's verdict to an adapter's manifest (src/activities/gate.ts); the cycle's fine-tune line shows it. */
export async function recordAdapterGate(db: Queryable, id: number, gate: Record<string, unknown>): Promise<void> {
  await db.query(`UPDATE adapters SET manifest = manifest || jsonb_build_object('gate', $2::jsonb) WHERE id = $1`, [id, JSON.stringify(gate)]);
}
