/**
 * Background service processes: started detached with their output in a log file, tracked
 * by pid, and stopped only by that pid (after checking it is still the process we started,
 * so a recycled pid is never signalled).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartOptions {
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts a detached process (its own process group) and returns its pid. */
export function startDetached(options: StartOptions): number {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = openSync(options.logFile, 'a');
  try {
    const child = spawn(options.command, options.args, {
      detached: true,
      stdio: ['ignore', log, log],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    if (child.pid === undefined) throw new Error(`could not start ${options.command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** True while the process table holds `pid`, a zombie included (it answers signal 0). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `pid` exists and is not a zombie: a process killed but not yet reaped by init
 * still answers signal 0, though nothing of it runs or listens any more.
 */
export function isRunning(pid: number): boolean {
  if (!processExists(pid)) return false;
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.startsWith('Z');
  } catch {
    return true; // no procfs: trust the signal check
  }
}

/** True when `pid` is running and its command line contains `marker` (what we started). */
export function isOurProcess(pid: number | undefined, marker: string): boolean {
  if (!pid || !isRunning(pid)) return false;
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync(cmdline)) return true; // no procfs: trust the pid
  return readFileSync(cmdline, 'utf8').split('\0').join(' ').includes(marker);
}

/** Sends SIGTERM to the process group we started, then SIGKILL after `graceMs`. */
export async function stopProcess(pid: number, marker: string, graceMs = 15_000): Promise<void> {
  if (!isOurProcess(pid, marker)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isOurProcess(pid, marker)) return;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Polls `check` until it returns true or `timeoutMs` passes; the error says what was awaited. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logFile?: string,
  alive: () => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const hint = logFile ? ` (see ${logFile})` : '';
  let last = '';
  while (Date.now() < deadline) {
    const healthy = await check().catch((error: Error) => {
      last = error.message;
      return false;
    });
    if (healthy) return;
    if (!alive()) throw new ProcessExited(`${what} exited before it became healthy${hint}`);
    await sleep(250);
  }
  throw new Error(`${what} did not become healthy within ${Math.round(timeoutMs / 1000)} s${last ? ` (last: ${last})` : ''}${hint}`);
}

/** The process we started is gone (it could not bind its port, say): no use waiting on. */
export class ProcessExited extends Error {
  override name = 'ProcessExited';
}

/** Waits until a process we just started is healthy; stops it (and rethrows) when it never is. */
export async function awaitHealthyOrStop(
  what: string,
  pid: number,
  marker: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logFile: string,
): Promise<void> {
  try {
    await waitFor(what, check, timeoutMs, logFile, () => isOurProcess(pid, marker));
  } catch (error) {
    await stopProcess(pid, marker, 2000);
    throw error;
  }
}

/** Stops a recorded service process if it is still the one we started; true when it was running. */
export async function stopIfOurs(pid: number | undefined, marker: string): Promise<boolean> {
  if (!pid || !isOurProcess(pid, marker)) return false;
  await stopProcess(pid, marker);
  return true;
}

export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The first free port at or after `start` (the preferred one when it is free). */
export async function freePort(start: number, tries = 200): Promise<number> {
  for (let port = start; port < start + tries; port++) if (await portIsFree(port)) return port;
  throw new Error(`no free port in ${start}..${start + tries - 1}`);
}

export function tcpOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
