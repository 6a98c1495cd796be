/** One shared pg Pool per process, created lazily from DATABASE_URL or services.json. */
import pg from 'pg';
import { databaseUrl } from '../env';

// bigint columns (ids, params) come back as numbers: every value archloop stores fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

let shared: pg.Pool | undefined;

export function getPool(): pg.Pool {
  if (!shared) {
    shared = new pg.Pool({ connectionString: databaseUrl(), max: 10 });
    // An idle client whose server went away (Postgres restarted) emits 'error'; unhandled,
    // that would crash the whole worker. The pool drops the client and the next query
    // connects afresh, so a note is all it takes.
    shared.on('error', (error) => console.error(`postgres: an idle connection failed (${error.message}); it will be replaced`));
  }
  return shared;
}

export async function closePool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.end();
}

export type Queryable = Pick<pg.Pool, 'query'>;

/** Refreshes the planner's statistics of every table (after a bulk load, before timing queries). */
export async function analyze(db: Queryable): Promise<void> {
  await db.query('ANALYZE');
}

/** Runs `fn` in a transaction on one client of the pool. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
