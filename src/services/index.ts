/**
 * `archloop services up|down|status`: the local Postgres cluster, the Temporal dev server
 * and the embedded LLM server, unless DATABASE_URL / TEMPORAL_ADDRESS / ARCHLOOP_LLM_URL
 * point elsewhere. What was started is recorded in <state>/services.json.
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrateUp } from '../db/migrate';
import { readServicesFile, servicesFilePath, stateDir, type ServicesFile } from '../env';
import { llmDown, llmHealthy, llmUp } from './llm';
import { postgresDown, postgresHealthy, postgresPasswordFile, postgresUp, redactUrl, relocateLegacyCluster } from './postgres';
import { temporalDown, temporalHealthy, temporalUp } from './temporal';

export const SERVICE_NAMES = ['postgres', 'temporal', 'llm'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface ServiceStatus {
  name: ServiceName;
  where: string;
  managed: boolean;
  healthy: boolean;
}

/**
 * The state dir holds secrets (the database password, services.json with DATABASE_URL):
 * 0700, whatever the umask was when something first created it.
 */
export function secureStateDir(): void {
  mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  chmodSync(stateDir(), 0o700);
}

function writeServicesFile(services: ServicesFile): void {
  secureStateDir();
  const file = servicesFilePath();
  writeFileSync(`${file}.tmp`, JSON.stringify(services, null, 2), { mode: 0o600 }); // DATABASE_URL has the password
  chmodSync(`${file}.tmp`, 0o600); // an old .tmp left by a crash keeps its mode otherwise
  renameSync(`${file}.tmp`, file); // atomic: a reader never sees half a file
}

/** Serializes concurrent `services up/down` calls on one state directory. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(stateDir(), { recursive: true });
  const lock = path.join(stateDir(), 'services.lock');
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      writeFileSync(lock, String(process.pid));
      break;
    } catch {
      const holder = Number(readFileSync(lock, 'utf8') || 0);
      if (holder && !alive(holder)) unlinkSync(lock);
      else if (Date.now() > deadline) throw new Error(`${lock} is held by pid ${holder}`);
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    unlinkSync(lock);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface UpOptions {
  services?: readonly ServiceName[];
  log?: (line: string) => void;
}

export async function servicesUp(options: UpOptions = {}): Promise<ServicesFile> {
  const wanted = new Set(options.services ?? SERVICE_NAMES);
  const log = options.log ?? (() => {});
  return withLock(async () => {
    if (wanted.has('postgres') && !process.env.DATABASE_URL) {
      const moved = await relocateLegacyCluster(); // before the state dir closes to the postgres user
      if (moved) log(`postgres  cluster moved out of the state dir to ${moved}`);
    }
    secureStateDir();
    const services = readServicesFile();
    if (wanted.has('postgres') && !process.env.DATABASE_URL) {
      services.postgres = await postgresUp(services.postgres?.port, log);
      writeServicesFile(services);
      log(`postgres  ${redactUrl(services.postgres.url)}  (password in ${postgresPasswordFile()})`);
    }
    const url = process.env.DATABASE_URL ?? services.postgres?.url;
    if (url && wanted.has('postgres')) {
      const applied = await migrateUp(url);
      log(`migrations ${applied.length ? `applied: ${applied.join(', ')}` : 'up to date'}`);
    }
    if (wanted.has('temporal') && !process.env.TEMPORAL_ADDRESS) {
      services.temporal = await temporalUp(services.temporal);
      writeServicesFile(services);
      log(`temporal  ${services.temporal.address}  (Web UI ${services.temporal.uiUrl})`);
    }
    if (wanted.has('llm') && !process.env.ARCHLOOP_LLM_URL) {
      services.llm = await llmUp(services.llm);
      writeServicesFile(services);
      log(`llm       ${services.llm.baseUrl}`);
    }
    return services;
  });
}

export async function servicesDown(options: UpOptions = {}): Promise<void> {
  const wanted = new Set(options.services ?? SERVICE_NAMES);
  const log = options.log ?? (() => {});
  await withLock(async () => {
    const services = readServicesFile();
    if (wanted.has('llm') && (await llmDown(services.llm))) log('llm stopped');
    if (wanted.has('temporal') && (await temporalDown(services.temporal))) log('temporal stopped');
    if (wanted.has('postgres') && !process.env.DATABASE_URL) {
      const moved = await relocateLegacyCluster(); // an older cluster in the state dir: stopped and moved
      if (moved) log(`postgres stopped (cluster moved out of the state dir to ${moved})`);
    }
    if (wanted.has('postgres') && (await postgresDown())) log('postgres stopped');
    for (const name of wanted) {
      if (name !== 'postgres') delete services[name];
      else if (services.postgres) delete services.postgres.pid; // keep the port for next time
    }
    writeServicesFile(services);
  });
}

export async function servicesStatus(): Promise<ServiceStatus[]> {
  const services = readServicesFile();
  const pgUrl = process.env.DATABASE_URL ?? services.postgres?.url;
  const temporal = process.env.TEMPORAL_ADDRESS ?? services.temporal?.address;
  const llm = process.env.ARCHLOOP_LLM_URL ?? services.llm?.baseUrl;
  return [
    {
      name: 'postgres',
      where: pgUrl ? redactUrl(pgUrl) : '-',
      managed: !process.env.DATABASE_URL,
      healthy: pgUrl ? await postgresHealthy(pgUrl) : false,
    },
    {
      name: 'temporal',
      where: temporal ?? '-',
      managed: !process.env.TEMPORAL_ADDRESS,
      healthy: temporal ? await temporalHealthy(temporal).catch(() => false) : false,
    },
    {
      name: 'llm',
      where: llm ?? '-',
      managed: !process.env.ARCHLOOP_LLM_URL,
      healthy: llm ? await llmHealthy(llm).catch(() => false) : false,
    },
  ];
}
