/** Where fine-tuning files live (per run, in the run id's path segment), and which directory a configured base model names. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { safeSegment } from '../core/run-id';
import { artifactsDir, modelsCacheDir, PYTHON_SRC, pythonBin, stateDir } from '../env';

export function cycleDir(runId: string, cycle: number, root: string = artifactsDir()): string {
  return path.join(root, safeSegment(runId), `cycle-${cycle}`);
}

const run = promisify(execFile);
const PREPARED_MARKER = 'archloop-prepared.json';

/**
 * `lora.baseModel` is a directory, or the name of an embedded model (python/archloop/llm/
 * weights.py), whose GGUF weights are converted once per machine into a float checkpoint
 * beside them (PEFT trains float weights; llama.cpp serves the GGUF). Anything else is
 * passed through, and the trainer reports it as a missing base model.
 */
export function preparedModelDir(name: string): string {
  return path.join(modelsCacheDir(), `${name}.hf`);
}

export async function resolveBaseModel(name: string, signal?: AbortSignal): Promise<string> {
  if (existsSync(name)) return path.resolve(name);
  const prepared = preparedModelDir(name);
  if (existsSync(path.join(prepared, PREPARED_MARKER))) return prepared;
  const catalog = await run(pythonBin(), ['-m', 'archloop.llm.weights', 'list'], { env: { ...process.env, PYTHONPATH: PYTHON_SRC } });
  const known = (JSON.parse(catalog.stdout) as Array<{ name: string }>).some((model) => model.name === name);
  if (!known) return name;
  await run(pythonBin(), ['-m', 'archloop.llm.prepare_model', '--name', name, '--out', prepared], {
    env: { ...process.env, PYTHONPATH: PYTHON_SRC, ARCHLOOP_HOME: stateDir(), OMP_WAIT_POLICY: 'PASSIVE' },
    signal,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`preparing the base model ${name} failed: ${(error.stderr || error.message).trim().split('\n').pop()}`);
  });
  return prepared;
}
