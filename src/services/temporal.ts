/**
 * The Temporal dev server from the official CLI (SQLite file under the state directory,
 * Web UI on :8233) with archloop's search attributes registered at start.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { stateDir, temporalNamespace } from '../env';
import { searchAttributes } from '../workflows/definitions';
import { awaitHealthyOrStop, freePort, isOurProcess, portIsFree, startDetached, stopIfOurs, waitFor } from './process';

export const TEMPORAL_CLI_VERSION = '1.9.1';
const MARKER = 'server start-dev';

/** ARCHLOOP_TEMPORAL_BIN, else a `temporal` on PATH, else the copy scripts/setup.sh cached. */
export function temporalBinary(): string {
  if (process.env.ARCHLOOP_TEMPORAL_BIN) return process.env.ARCHLOOP_TEMPORAL_BIN;
  try {
    return execFileSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).trim();
  } catch {
    const cached = path.join(os.homedir(), '.cache', 'archloop', 'temporal', TEMPORAL_CLI_VERSION, 'temporal');
    if (existsSync(cached)) return cached;
    throw new Error('the Temporal CLI is not installed: run `npm run setup` (or put `temporal` on PATH)');
  }
}

export interface TemporalInfo {
  address: string;
  uiUrl: string;
  pid?: number;
}

const attributeFlags = Object.values(searchAttributes).flatMap((key) => [
  '--search-attribute',
  `${key.name}=${{ INT: 'Int', DOUBLE: 'Double', KEYWORD: 'Keyword' }[key.type as 'INT' | 'DOUBLE' | 'KEYWORD']}`,
]);

export async function temporalHealthy(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: temporalNamespace(),
    });
    return Object.values(searchAttributes).every((key) => key.name in (customAttributes ?? {}));
  } finally {
    await connection.close();
  }
}

/**
 * Starts the dev server unless ours is already running. Ports: those it had before (so
 * workers started against it find it again after a crash), else 7233 / 8233, else the next
 * free ones (ARCHLOOP_TEMPORAL_PORT / ARCHLOOP_TEMPORAL_UI_PORT force them).
 */
export async function temporalUp(previous?: TemporalInfo): Promise<TemporalInfo> {
  if (previous?.pid && isOurProcess(previous.pid, MARKER)) {
    await waitFor('temporal', () => temporalHealthy(previous.address), 60_000);
    return previous;
  }
  const port = await choosePort(process.env.ARCHLOOP_TEMPORAL_PORT, 7233, portOf(previous?.address));
  const uiPort = await choosePort(process.env.ARCHLOOP_TEMPORAL_UI_PORT, 8233, portOf(previous?.uiUrl));
  const dir = path.join(stateDir(), 'temporal');
  const logFile = path.join(dir, 'temporal.log');
  const pid = startDetached({
    command: temporalBinary(),
    args: [
      'server', 'start-dev',
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--ui-port', String(uiPort),
      '--db-filename', path.join(dir, 'temporal.db'),
      '--namespace', temporalNamespace(),
      '--log-format', 'json',
      '--log-level', 'warn',
      ...attributeFlags,
    ],
    logFile,
  });
  const info = { address: `127.0.0.1:${port}`, uiUrl: `http://localhost:${uiPort}`, pid };
  await awaitHealthyOrStop('temporal', pid, MARKER, () => temporalHealthy(info.address), 90_000, logFile);
  return info;
}

function portOf(address: string | undefined): number | undefined {
  const match = address ? /:(\d+)$/.exec(address.replace(/\/+$/, '')) : null;
  return match ? Number(match[1]) : undefined;
}

async function choosePort(forced: string | undefined, preferred: number, previous?: number): Promise<number> {
  if (forced) return Number(forced);
  if (previous && (await portIsFree(previous))) return previous;
  return (await portIsFree(preferred)) ? preferred : freePort(preferred + 10_000);
}

export function temporalDown(info?: TemporalInfo): Promise<boolean> {
  return stopIfOurs(info?.pid, MARKER);
}

export { MARKER as TEMPORAL_MARKER };
