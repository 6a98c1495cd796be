/** The shared pool outlives a Postgres restart: an idle connection the server drops must not crash the process. */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { closePool, getPool } from '../../src/db/pool';

after(() => closePool());

test('an idle connection terminated by the server is replaced, not fatal', async () => {
  const pool = getPool();
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]); // what a Postgres restart does to it
  await admin.end();
  await new Promise((resolve) => setTimeout(resolve, 500)); // the idle client notices and emits 'error'
  assert.deepEqual((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
});
