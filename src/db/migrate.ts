/**
 * Schema migrations with node-pg-migrate (plain SQL files in infra/migrations, applied in
 * numeric order, recorded in pgmigrations, guarded by an advisory lock so two workers
 * starting at once do not race).
 */
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { REPO_ROOT } from '../env';

export const MIGRATIONS_DIR = path.join(REPO_ROOT, 'infra', 'migrations');
const TABLE = 'pgmigrations';

const quiet = { debug: () => {}, info: () => {}, warn: (m: string) => console.warn(m), error: (m: string) => console.error(m) };

/** Applies every pending migration; returns the names applied now. */
export async function migrateUp(databaseUrl: string): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: TABLE,
    checkOrder: true,
    singleTransaction: true,
    logger: quiet,
  });
  return applied.map((migration) => migration.name);
}

/** Names of migrations in the repo that the database has not applied yet. */
export async function pendingMigrations(databaseUrl: string): Promise<string[]> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((name) => name.endsWith('.sql'))
    .map((name) => name.replace(/\.sql$/, ''))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const exists = await client.query(`SELECT to_regclass($1) AS t`, [TABLE]);
    if (!exists.rows[0]?.t) return files;
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${TABLE}`);
    const done = new Set(rows.map((row) => row.name));
    return files.filter((name) => !done.has(name));
  } finally {
    await client.end();
  }
}
