/** Migrations from an empty database, and re-applied. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { migrateUp, pendingMigrations } from '../../src/db/migrate';
import { createTestDatabase } from '../helpers/db';

test('migrations apply from empty, then re-apply as a no-op', async () => {
  const db = await createTestDatabase(); // applies every migration once
  try {
    assert.deepEqual(await pendingMigrations(db.url), []);
    assert.deepEqual(await migrateUp(db.url), [], 're-applying changes nothing');
    const { rows } = await db.pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    const tables = new Set(rows.map((r) => r.table_name));
    for (const table of ['runs', 'cycles', 'candidates', 'corpus', 'adapters', 'prompts', 'pgmigrations']) {
      assert.ok(tables.has(table), `table ${table} exists`);
    }
  } finally {
    await db.drop();
  }
});

test('a second write of the same (run, cycle, sample index) is the same row', async () => {
  const db = await createTestDatabase();
  try {
    await db.pool.query(`INSERT INTO runs (id, name, preset, config) VALUES ('r', 'n', 'demo', '{}')`);
    await db.pool.query(`INSERT INTO cycles (run_id, cycle, model) VALUES ('r', 1, 'm')`);
    const insert = `INSERT INTO candidates (run_id, cycle, sample_index, model) VALUES ('r', 1, 0, 'm')`;
    await db.pool.query(insert);
    await assert.rejects(db.pool.query(insert), (error: pg.DatabaseError) => error.code === '23505');
  } finally {
    await db.drop();
  }
});
