/** Adapter rows move only forward: training → ready → published (real Postgres). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  AdapterStatusError,
  adapterById,
  markAdapterPublished,
  markAdapterReady,
  upsertTrainingAdapter,
} from '../../src/db/adapters';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { insertRun } from '../llm/support';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await insertRun(db.pool, 'run-a', {});
});
after(() => db.drop());

const training = (cycle: number, dataHash = 'h1') => ({ runId: 'run-a', cycle, path: `/a/${cycle}`, baseModel: 'base', parentId: null, dataHash });

test('ready and published rows are never moved back by a late fine-tune attempt', async () => {
  const row = await upsertTrainingAdapter(db.pool, training(1));
  assert.equal(row.status, 'training');
  await markAdapterReady(db.pool, row.id, '/a/1/adapter', { steps: 1 });
  await markAdapterPublished(db.pool, row.id, 'run-a-cycle-1');
  assert.equal((await adapterById(db.pool, row.id))?.status, 'published');

  // The orphaned attempt finishes after the publish: nothing changes.
  await markAdapterReady(db.pool, row.id, '/elsewhere', { steps: 9 });
  const late = await adapterById(db.pool, row.id);
  assert.equal(late?.status, 'published');
  assert.equal(late?.path, '/a/1/adapter');
  assert.deepEqual(late?.manifest, { steps: 1 });

  // A retried fine-tune with other data (e.g. more seed entries imported) keeps the finished adapter.
  const again = await upsertTrainingAdapter(db.pool, training(1, 'h2'));
  assert.equal(again.status, 'published');
  assert.equal(again.data_hash, 'h1');
  assert.equal(again.model_name, 'run-a-cycle-1');

  // Publishing twice keeps the first name.
  await markAdapterPublished(db.pool, row.id, 'other');
  assert.equal((await adapterById(db.pool, row.id))?.model_name, 'run-a-cycle-1');
});

test('an unfinished row is reclaimed for new data and cannot be published', async () => {
  const first = await upsertTrainingAdapter(db.pool, training(2, 'h1'));
  const second = await upsertTrainingAdapter(db.pool, training(2, 'h2'));
  assert.equal(second.id, first.id);
  assert.equal(second.data_hash, 'h2');
  await assert.rejects(markAdapterPublished(db.pool, first.id, 'x'), AdapterStatusError);
  assert.equal((await adapterById(db.pool, first.id))?.status, 'training');
  await assert.rejects(markAdapterReady(db.pool, 999_999, '/x', {}), AdapterStatusError);
});
