/**
 * A private Postgres cluster for dev, demo and tests: initdb/pg_ctl from Debian's
 * postgresql, data under the state directory, listening on 127.0.0.1 only (trust auth on
 * loopback, no unix socket), on the first free port from 55432. Postgres refuses to run
 * as root, so as root the cluster belongs to the `postgres` system user.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { stateDir } from '../env';
import { freePort, portIsFree, waitFor } from './process';

const run = promisify(execFile);
const DATABASE = 'archloop';
const SUPERUSER = 'archloop';

export interface PostgresInfo {
  url: string;
  port: number;
  pid?: number;
}

export function postgresBinDir(): string {
  if (process.env.ARCHLOOP_PG_BIN) return process.env.ARCHLOOP_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('PostgreSQL server binaries not found: apt-get install postgresql (or set DATABASE_URL)');
  return path.join(root, versions[0]!, 'bin');
}

const isRoot = () => process.getuid?.() === 0;

/** Runs a Postgres binary, as the `postgres` user when we are root. */
async function pgExec(binary: string, args: string[]): Promise<string> {
  const file = path.join(postgresBinDir(), binary);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  const { stdout } = await run(cmd, argv, { timeout: 120_000 });
  return stdout;
}

/**
 * Where the cluster lives: <state>/postgres, unless we are root and the `postgres` user
 * cannot reach that directory (a repo under /root, a mode-700 temp dir): then a directory
 * of its own under /var/lib/archloop, named after the state directory.
 */
const clusterDirs = new Map<string, string>();
function clusterDir(): string {
  return postgresClusterDir(stateDir());
}

export function postgresClusterDir(state: string): string {
  let dir = clusterDirs.get(state);
  if (!dir) {
    const preferred = path.join(state, 'postgres');
    const key = createHash('sha256').update(state).digest('hex').slice(0, 12);
    dir = !isRoot() || postgresCanReach(state) ? preferred : path.join('/var/lib/archloop', key, 'postgres');
    clusterDirs.set(state, dir);
  }
  return dir;
}

function postgresCanReach(dir: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]).status === 0;
}

function dataDir(): string {
  return path.join(clusterDir(), 'data');
}

function ensureClusterDir(): void {
  mkdirSync(clusterDir(), { recursive: true });
  if (isRoot()) {
    const { uid, gid } = postgresUser();
    chownSync(clusterDir(), uid, gid);
  }
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs the `postgres` system user (apt-get install postgresql)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** pid and port of the running postmaster of our data dir, from postmaster.pid. */
function runningPostmaster(): { pid: number; port: number } | null {
  const file = path.join(dataDir(), 'postmaster.pid');
  if (!existsSync(file)) return null;
  const [pid, , , port] = readFileSync(file, 'utf8').split('\n');
  const n = Number(pid);
  try {
    process.kill(n, 0);
  } catch {
    return null;
  }
  return { pid: n, port: Number(port) };
}

export function postgresUrl(port: number, database = DATABASE): string {
  return `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function postgresUp(preferredPort?: number): Promise<PostgresInfo> {
  ensureClusterDir();
  if (!existsSync(path.join(dataDir(), 'PG_VERSION'))) {
    try {
      await pgExec('initdb', ['-D', dataDir(), '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--no-instructions']);
    } catch (error) {
      throw new Error(
        `initdb failed for ${dataDir()}: ${(error as Error).message.split('\n')[0]}` +
          (isRoot() ? ' (the postgres user must be able to reach that directory)' : ''),
      );
    }
  }
  let running = runningPostmaster();
  if (!running) {
    const port = preferredPort && (await portIsFree(preferredPort)) ? preferredPort : await freePort(55432);
    const logFile = path.join(clusterDir(), 'postgres.log');
    await pgExec('pg_ctl', [
      '-D', dataDir(),
      '-l', logFile,
      '-w', '-t', '60',
      '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
      'start',
    ]).catch((error: Error) => {
      throw new Error(`postgres did not start: ${error.message.split('\n')[0]} (see ${logFile})`);
    });
    running = runningPostmaster();
    if (!running) throw new Error(`postgres did not start (see ${logFile})`);
  }
  const admin = postgresUrl(running.port, 'postgres');
  await waitFor('postgres', () => canConnect(admin), 30_000);
  await ensureDatabase(admin, DATABASE);
  return { url: postgresUrl(running.port), port: running.port, pid: running.pid };
}

export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

export async function postgresDown(): Promise<boolean> {
  if (!runningPostmaster()) return false;
  await pgExec('pg_ctl', ['-D', dataDir(), '-m', 'fast', '-w', '-t', '60', 'stop']);
  return true;
}

export async function postgresHealthy(url: string): Promise<boolean> {
  return canConnect(url).catch(() => false);
}

