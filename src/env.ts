/**
 * Where things are: the state directory, the service endpoints and the Python runtime.
 * Environment variables win over what `archloop services up` recorded in services.json,
 * so a user can point archloop at a shared Postgres, Temporal cluster or LLM server.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Repository root (this file is src/env.ts, or dist/src/env.js once compiled). */
export const REPO_ROOT = findRepoRoot(__dirname);

function findRepoRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export function stateDir(): string {
  return path.resolve(process.env.ARCHLOOP_HOME ?? path.join(REPO_ROOT, '.archloop'));
}

export function artifactsDir(): string {
  return path.resolve(process.env.ARCHLOOP_ARTIFACTS ?? path.join(stateDir(), 'artifacts'));
}

/**
 * Model files shared by every checkout on the machine (python/archloop/llm/weights.py writes
 * here too): GGUF weights, their float checkpoints for training, cached seed adapters.
 */
export function modelsCacheDir(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  return path.resolve(process.env.ARCHLOOP_MODELS ?? path.join(cache, 'archloop', 'models'));
}

/** The Python interpreter of the repo's virtual environment (override: ARCHLOOP_PYTHON). */
export function pythonBin(): string {
  return process.env.ARCHLOOP_PYTHON ?? path.join(REPO_ROOT, '.venv', 'bin', 'python');
}

/** PYTHONPATH entry holding the `archloop` Python package. */
export const PYTHON_SRC = path.join(REPO_ROOT, 'python');

export const ServicesFile = z.object({
  postgres: z.object({ url: z.string(), port: z.number().int(), pid: z.number().int().optional() }).optional(),
  temporal: z
    .object({ address: z.string(), uiUrl: z.string(), pid: z.number().int().optional() })
    .optional(),
  llm: z.object({ baseUrl: z.string(), pid: z.number().int().optional(), model: z.string().optional() }).optional(),
});
export type ServicesFile = z.infer<typeof ServicesFile>;

export function servicesFilePath(): string {
  return path.join(stateDir(), 'services.json');
}

export function readServicesFile(): ServicesFile {
  const file = servicesFilePath();
  if (!existsSync(file)) return {};
  return ServicesFile.parse(JSON.parse(readFileSync(file, 'utf8')));
}

export class NotConfiguredError extends Error {
  override name = 'NotConfiguredError';
}

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL ?? readServicesFile().postgres?.url;
  if (!url) throw new NotConfiguredError('no database: run `archloop services up` or set DATABASE_URL');
  return url;
}

export function temporalAddress(): string {
  return process.env.TEMPORAL_ADDRESS ?? readServicesFile().temporal?.address ?? 'localhost:7233';
}

export function temporalNamespace(): string {
  return process.env.TEMPORAL_NAMESPACE ?? 'default';
}

export function temporalUiUrl(): string {
  return process.env.TEMPORAL_UI_URL ?? readServicesFile().temporal?.uiUrl ?? 'http://localhost:8233';
}

/** Base URL of the OpenAI-compatible server used when a config leaves `llm.baseUrl` empty. */
export function embeddedLlmUrl(): string {
  const url = process.env.ARCHLOOP_LLM_URL ?? readServicesFile().llm?.baseUrl;
  if (!url) throw new NotConfiguredError('no LLM endpoint: run `archloop services up` or set ARCHLOOP_LLM_URL');
  return url;
}
