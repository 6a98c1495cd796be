/**
 * A private Postgres cluster for dev, demo and tests: initdb/pg_ctl from Debian's
 * postgresql, listening on 127.0.0.1 only (no unix socket), on the first free port from
 * 55432. One role, `archloop`, with a generated password (scram-sha-256) kept in
 * <state>/postgres.password (0600); a cluster made before that (trust on loopback) is
 * migrated when it starts: password set, pg_hba switched to scram, data kept. The file is
 * the truth: a cluster that refuses it (the state dir was made again) is given it.
 * Postgres refuses to run as root, so as root the cluster belongs to the `postgres` system
 * user and lives in /var/lib/archloop/<hash of the state dir>/ (the state dir is 0700).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { stateDir } from '../env';
import { freePort, isRunning, portIsFree, processExists, waitFor } from './process';

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

/** The command line of a Postgres binary, as the `postgres` user when we are root. */
function pgCommand(binary: string, args: string[]): [string, string[]] {
  const file = path.join(postgresBinDir(), binary);
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

/** Runs a Postgres binary (pgCommand). */
async function pgExec(binary: string, args: string[]): Promise<string> {
  const { stdout } = await run(...pgCommand(binary, args), { timeout: 120_000 });
  return stdout;
}

/**
 * Where the cluster lives: <state>/postgres, or as root (the `postgres` user cannot enter
 * the 0700 state dir) a directory of its own under /var/lib/archloop, named after the
 * state directory.
 */
function clusterDir(): string {
  return postgresClusterDir(stateDir());
}

export function postgresClusterDir(state: string): string {
  return isRoot() ? rootClusterDir(state) : path.join(state, 'postgres');
}

function rootClusterDir(state: string): string {
  const key = createHash('sha256').update(path.resolve(state)).digest('hex').slice(0, 12);
  return path.join('/var/lib/archloop', key, 'postgres');
}

/**
 * As root, a cluster made by an older archloop inside the state dir (when the `postgres`
 * user could still enter it) moves to its own directory, stopped first and with its data,
 * before the state dir is closed to other users. Returns where it went, if it moved.
 */
export async function relocateLegacyCluster(state: string = stateDir()): Promise<string | undefined> {
  const legacy = path.join(state, 'postgres');
  if (!isRoot() || !existsSync(path.join(legacy, 'data', 'PG_VERSION'))) return undefined;
  const target = rootClusterDir(state);
  if (existsSync(path.join(target, 'data', 'PG_VERSION'))) {
    throw new Error(`two Postgres clusters for ${state}: ${legacy} (older) and ${target}; keep one and remove the other`);
  }
  if (postmasterOf(path.join(legacy, 'data'))) {
    await pgExec('pg_ctl', ['-D', path.join(legacy, 'data'), '-m', 'fast', '-w', '-t', '60', 'stop']);
  }
  mkdirSync(path.dirname(target), { recursive: true });
  chmodSync(path.dirname(target), 0o755);
  rmSync(target, { recursive: true, force: true }); // an empty leftover, never a cluster (checked above)
  try {
    renameSync(legacy, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    cpSync(legacy, target, { recursive: true, preserveTimestamps: true });
    const { uid, gid } = postgresUser();
    spawnSync('chown', ['-R', `${uid}:${gid}`, target]);
    rmSync(legacy, { recursive: true, force: true });
  }
  return target;
}

function clusterLog(): string {
  return path.join(clusterDir(), 'postgres.log');
}

function dataDir(): string {
  return path.join(clusterDir(), 'data');
}

function ensureClusterDir(): void {
  const dir = clusterDir();
  if (isRoot()) {
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 }); // the postgres user passes through
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { uid, gid } = postgresUser();
    chownSync(dir, uid, gid);
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  chmodSync(dir, 0o700); // a cluster dir from before keeps the umask's mode otherwise
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
  return postmasterOf(dataDir());
}

function postmasterOf(data: string): { pid: number; port: number } | null {
  const file = path.join(data, 'postmaster.pid');
  if (!existsSync(file)) return null;
  const [pid, , , port] = readFileSync(file, 'utf8').split('\n');
  const n = Number(pid);
  return isRunning(n) ? { pid: n, port: Number(port) } : null; // a killed, unreaped postmaster listens no more
}

/**
 * A postmaster killed but not yet reaped by init (a zombie) still answers signal 0, and
 * Postgres refuses to start while its lock file names a live pid: wait for init to reap it
 * (a few seconds here), and if it does not, remove the lock of the process that no longer runs.
 */
async function releaseDeadLock(): Promise<void> {
  const file = path.join(dataDir(), 'postmaster.pid');
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  if (!pid || !processExists(pid)) return;
  await waitFor('the killed postmaster to be reaped', async () => !processExists(pid), 15_000).catch(() => rmSync(file, { force: true }));
}

export function postgresUrl(port: number, password: string | null, database = DATABASE): string {
  const auth = password === null ? SUPERUSER : `${SUPERUSER}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@127.0.0.1:${port}/${database}`;
}

/** The URL with its password masked, for logs and status lines. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

export function postgresPasswordFile(state: string = stateDir()): string {
  return path.join(state, 'postgres.password');
}

/** The cluster's password: read, or generated once and written (0600) before any use of it. */
function clusterPassword(): string {
  const file = postgresPasswordFile();
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    const password = readFileSync(file, 'utf8').trim();
    if (password) return password;
  }
  const password = randomBytes(24).toString('base64url'); // URL-safe: no escaping anywhere
  writeFileSync(`${file}.tmp`, `${password}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return password;
}

/**
 * The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677, as libpq's
 * PQencryptPasswordConn makes it): ALTER ROLE gets the verifier, never the password, so
 * the password appears in no statement and no server log.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The statement that gives the role `password`, as its scram verifier. */
function setPasswordSql(password: string): string {
  return `ALTER ROLE ${pg.escapeIdentifier(SUPERUSER)} PASSWORD ${pg.escapeLiteral(scramVerifier(password))}`;
}

/** Password logins over loopback TCP only (the cluster has no unix socket). */
export const PG_HBA = [
  '# archloop: the archloop role with its password (scram-sha-256), over loopback TCP only.',
  'host all all 127.0.0.1/32 scram-sha-256',
  'host all all ::1/128 scram-sha-256',
  '',
].join('\n');

/** True when pg_hba.conf lets anything in without a scram password (a cluster from before). */
function hbaNeedsMigration(): boolean {
  const rules = readFileSync(path.join(dataDir(), 'pg_hba.conf'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
  return rules.some((rule) => rule.split(/\s+/).at(-1) !== 'scram-sha-256');
}

/**
 * A trust-auth cluster from before: set the role's password, switch pg_hba.conf to scram
 * and reload. Each step is safe to repeat, so a crash half-way is finished on the next start
 * (the password file is written before the role gets its password).
 */
async function migrateToPassword(port: number, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl(port, null, 'postgres'), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(setPasswordSql(password));
    writeFileSync(path.join(dataDir(), 'pg_hba.conf'), PG_HBA); // overwrites in place: owner and mode stay
    await client.query('SELECT pg_reload_conf()');
  } finally {
    await client.end().catch(() => undefined);
  }
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

export async function postgresUp(preferredPort?: number, log: (line: string) => void = () => {}, passwordJustSet = false): Promise<PostgresInfo> {
  ensureClusterDir();
  const password = clusterPassword();
  if (!existsSync(path.join(dataDir(), 'PG_VERSION'))) await initCluster(password);
  let running = runningPostmaster();
  if (!running) {
    await releaseDeadLock();
    const port = preferredPort && (await portIsFree(preferredPort)) ? preferredPort : await freePort(55432);
    const logFile = clusterLog();
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
  if (hbaNeedsMigration()) {
    await waitFor('postgres', () => canConnect(postgresUrl(running!.port, null, 'postgres')), 30_000);
    await migrateToPassword(running.port, password);
  }
  const admin = postgresUrl(running.port, password, 'postgres');
  if (!(await passwordAccepted(admin))) {
    if (passwordJustSet) throw new Error(`postgres refused the password it was just given (see ${clusterLog()})`);
    // The state dir's password file is the truth and the cluster follows it: a state dir
    // made again (a fresh clone at the same path, as root, finds the cluster it left under
    // /var/lib/archloop) holds a new password. Whoever runs this owns the cluster's files,
    // so setting the role's password reveals nothing they could not read; the data stays.
    log(`postgres: the cluster in ${dataDir()} did not take the password in ${postgresPasswordFile()}; setting it (data kept)`);
    await postgresDown();
    await setRolePassword(password);
    return postgresUp(running.port, log, true);
  }
  await ensureDatabase(admin, DATABASE);
  return { url: postgresUrl(running.port, password), port: running.port, pid: running.pid };
}

/** Waits for the server; false when it answers that the password is wrong (28P01). */
async function passwordAccepted(url: string): Promise<boolean> {
  let rejected = false;
  await waitFor(
    'postgres',
    () =>
      canConnect(url).catch((error: { code?: string }) => {
        if (error.code !== '28P01') throw error;
        rejected = true;
        return true;
      }),
    30_000,
    clusterLog(),
  );
  return !rejected;
}

/**
 * Sets the role's password on the stopped cluster through single-user mode: no port is
 * opened and no trust rule written, and the statement carries the scram verifier only.
 */
async function setRolePassword(password: string): Promise<void> {
  const [cmd, argv] = pgCommand('postgres', ['--single', '-D', dataDir(), 'postgres']);
  const result = spawnSync(cmd, argv, { input: `${setPasswordSql(password)}\n`, encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0 || /\b(ERROR|FATAL):/.test(result.stderr ?? '')) {
    throw new Error(`postgres: could not set the role's password in ${dataDir()}: ${(result.stderr || result.error?.message || '').trim().split('\n')[0]}`);
  }
}

/** initdb with scram from the start; the password reaches initdb through a 0600 file of the cluster's owner. */
async function initCluster(password: string): Promise<void> {
  const pwfile = path.join(clusterDir(), '.initdb-password');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (isRoot()) chownSync(pwfile, postgresUser().uid, postgresUser().gid);
    await pgExec('initdb', ['-D', dataDir(), '-U', SUPERUSER, '-A', 'scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-instructions']);
    writeFileSync(path.join(dataDir(), 'pg_hba.conf'), PG_HBA);
  } catch (error) {
    throw new Error(
      `initdb failed for ${dataDir()}: ${(error as Error).message.split('\n')[0]}` +
        (isRoot() ? ' (the postgres user must be able to reach that directory)' : ''),
    );
  } finally {
    unlinkSync(pwfile);
  }
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

