/**
 * The private Postgres cluster: a generated scram password in a 0600 file of a 0700 state
 * dir, services.json 0600, no password in any output; and a trust-auth cluster made by an
 * older archloop is migrated on `services up` with its data, and a state dir made again gets
 * into the cluster it left. Real initdb/pg_ctl.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { REPO_ROOT } from '../../src/env';
import { postgresBinDir, postgresClusterDir, postgresPasswordFile, scramVerifier } from '../../src/services/postgres';
import { freePort } from '../../src/services/process';

const BIN = path.join(REPO_ROOT, 'bin', 'archloop');
const homes: string[] = [];
const isRoot = process.getuid?.() === 0;

function newHome(): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'archloop-pg-'));
  homes.push(home);
  return home;
}

after(() => {
  for (const home of homes) {
    archloop(home, ['services', 'down', '--only', 'postgres']);
    rmSync(path.dirname(postgresClusterDir(home)), { recursive: true, force: true }); // may live outside home (as root)
    rmSync(home, { recursive: true, force: true });
  }
});

function archloop(home: string, args: string[]): { code: number | null; out: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, ARCHLOOP_HOME: home };
  delete env.DATABASE_URL;
  const r = spawnSync(BIN, args, { env, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);
const services = (home: string) => JSON.parse(readFileSync(path.join(home, 'services.json'), 'utf8')) as { postgres: { url: string; port: number } };

async function connects(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const withPassword = (url: string, password: string | null) => {
  const u = new URL(url);
  u.password = password ?? '';
  return u.toString();
};

async function assertOnlyThePasswordOpens(home: string): Promise<void> {
  const { url } = services(home).postgres;
  const password = readFileSync(postgresPasswordFile(home), 'utf8').trim();
  assert.ok(password.length >= 32);
  assert.equal(decodeURIComponent(new URL(url).password), password);
  assert.equal(await connects(url), true, 'the password in services.json opens it');
  assert.equal(await connects(withPassword(url, null)), false, 'no password: refused');
  assert.equal(await connects(withPassword(url, 'wrong')), false, 'a wrong password: refused');
  assert.equal(mode(home), '700');
  assert.equal(mode(postgresPasswordFile(home)), '600');
  assert.equal(mode(path.join(home, 'services.json')), '600');
}

test('a new cluster: scram password in a 0600 file, 0700 state dir, no password in the output', async () => {
  const home = newHome();
  chmodSync(home, 0o755); // as a default umask would leave it
  const up = archloop(home, ['services', 'up', '--only', 'postgres']);
  assert.equal(up.code, 0, up.out);
  await assertOnlyThePasswordOpens(home);
  const password = readFileSync(postgresPasswordFile(home), 'utf8').trim();
  assert.ok(!up.out.includes(password), 'services up prints no password');
  assert.match(up.out, /postgres\s+postgres:\/\/archloop:\*\*\*@127\.0\.0\.1:\d+\/archloop/);
  const status = archloop(home, ['services', 'status']);
  assert.ok(!status.out.includes(password), 'services status prints no password');
  const hba = readFileSync(path.join(postgresClusterDir(home), 'data', 'pg_hba.conf'), 'utf8');
  assert.deepEqual(hba.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/\s+/).at(-1)), ['scram-sha-256', 'scram-sha-256']);

  // Restart: same password, same data.
  const client = new pg.Client(services(home).postgres.url);
  await client.connect();
  await client.query(`CREATE TABLE kept (x text); INSERT INTO kept VALUES ('yes')`);
  await client.end();
  assert.equal(archloop(home, ['services', 'down', '--only', 'postgres']).code, 0);
  assert.equal(archloop(home, ['services', 'up', '--only', 'postgres']).code, 0);
  const again = new pg.Client(services(home).postgres.url);
  await again.connect();
  assert.deepEqual((await again.query('SELECT x FROM kept')).rows, [{ x: 'yes' }]);
  await again.end();
});

test('a trust-auth cluster from an older archloop keeps its data and gets the password', async () => {
  const home = newHome();
  chmodSync(home, 0o755); // old state dirs kept the umask: the postgres user could enter them
  // What the older `services up` made: <state>/postgres/data, trust on loopback, owned by postgres as root.
  const legacy = path.join(home, 'postgres');
  mkdirSync(legacy);
  const pgUser = (bin: string, args: string[]) => {
    const file = path.join(postgresBinDir(), bin);
    const r = isRoot ? spawnSync('runuser', ['-u', 'postgres', '--', file, ...args], { encoding: 'utf8' }) : spawnSync(file, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  if (isRoot) {
    const [, , uid, gid] = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))!.split(':');
    chownSync(legacy, Number(uid), Number(gid));
  }
  pgUser('initdb', ['-D', path.join(legacy, 'data'), '-U', 'archloop', '-A', 'trust', '-E', 'UTF8', '--no-instructions']);
  // A port free now: a fixed random pick in Linux's ephemeral range (32768–60999) met a local
  // port of the suite's own connections once and the postmaster could not bind.
  const port = await freePort(56000 + Math.floor(Math.random() * 900));
  pgUser('pg_ctl', ['-D', path.join(legacy, 'data'), '-l', path.join(legacy, 'postgres.log'), '-w', '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`, 'start']);
  const old = new pg.Client(`postgres://archloop@127.0.0.1:${port}/postgres`);
  await old.connect();
  await old.query('CREATE DATABASE archloop');
  await old.end();
  const oldDb = new pg.Client(`postgres://archloop@127.0.0.1:${port}/archloop`);
  await oldDb.connect();
  await oldDb.query(`CREATE TABLE runs_before (id text); INSERT INTO runs_before VALUES ('run-1')`);
  await oldDb.end();
  writeFileSync(path.join(home, 'services.json'), JSON.stringify({ postgres: { url: `postgres://archloop@127.0.0.1:${port}/archloop`, port } }));

  const up = archloop(home, ['services', 'up', '--only', 'postgres']); // running, as a user would find it
  assert.equal(up.code, 0, up.out);
  if (isRoot) assert.match(up.out, /cluster moved out of the state dir to \/var\/lib\/archloop\//);
  await assertOnlyThePasswordOpens(home);
  const migrated = new pg.Client(services(home).postgres.url);
  await migrated.connect();
  assert.deepEqual((await migrated.query('SELECT id FROM runs_before')).rows, [{ id: 'run-1' }]);
  await migrated.end();
  // Idempotent: up again changes nothing and still opens.
  assert.equal(archloop(home, ['services', 'up', '--only', 'postgres']).code, 0);
  await assertOnlyThePasswordOpens(home);
});

test('a state dir made again (its password file new or gone) gets into its cluster: the role takes the file\'s password, data kept', async () => {
  // As CI sees it: a fresh clone at the same path finds, as root, the cluster it left under /var/lib/archloop.
  const home = newHome();
  assert.equal(archloop(home, ['services', 'up', '--only', 'postgres']).code, 0);
  const first = new pg.Client(services(home).postgres.url);
  await first.connect();
  await first.query(`CREATE TABLE kept (x text); INSERT INTO kept VALUES ('yes')`);
  await first.end();
  const stale = services(home).postgres.url;

  // Stopped, password file and services.json gone.
  assert.equal(archloop(home, ['services', 'down', '--only', 'postgres']).code, 0);
  rmSync(postgresPasswordFile(home));
  rmSync(path.join(home, 'services.json'));
  const up = archloop(home, ['services', 'up', '--only', 'postgres']);
  assert.equal(up.code, 0, up.out);
  assert.match(up.out, /did not take the password in .*postgres\.password; setting it \(data kept\)/);
  await assertOnlyThePasswordOpens(home);
  assert.equal(await connects(stale), false, 'the old password no longer opens it');

  // Running, password file replaced by another.
  writeFileSync(postgresPasswordFile(home), 'another-password-of-32-characters-at-least\n', { mode: 0o600 });
  const again = archloop(home, ['services', 'up', '--only', 'postgres']);
  assert.equal(again.code, 0, again.out);
  await assertOnlyThePasswordOpens(home);
  const client = new pg.Client(services(home).postgres.url);
  await client.connect();
  assert.deepEqual((await client.query('SELECT x FROM kept')).rows, [{ x: 'yes' }]);
  await client.end();
  assert.ok(!`${up.out}${again.out}`.includes('another-password'), 'no password in the output');
});

test('the SCRAM verifier matches the RFC 7677 test vector', () => {
  // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
  const verifier = scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
  // StoredKey/ServerKey derived from the RFC's SaltedPassword (its ServerSignature checks out against ServerKey).
  assert.match(verifier, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  const serverKey = Buffer.from(verifier.split(':').at(-1)!, 'base64');
  const authMessage =
    'n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const signature = require('node:crypto').createHmac('sha256', serverKey).update(authMessage).digest('base64');
  assert.equal(signature, '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
});
