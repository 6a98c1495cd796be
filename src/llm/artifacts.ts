/** Where fine-tuning files live, and which directory a configured base model names. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256 } from '../core/prompts';
import { artifactsDir, modelsCacheDir, PYTHON_SRC, pythonBin, stateDir } from '../env';

/** A run id as one path segment; a hash suffix keeps sanitized ids apart (a/b vs a_b). */
export function safeSegment(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return safe === id ? id : `${safe}-${sha256(id).slice(0, 8)}`;
}

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

/** The name an adapter is served under: stable, so publishing twice loads it once. */
export function adapterModelName(runId: string, cycle: number): string {
  return `archloop-${safeSegment(runId)}-cycle-${cycle}`;
}

/** What the serving side (vLLM, the embedded server) accepts as an adapter name. */
export const ADAPTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$/;
/** Cycle numbers are reserved up to this many digits when a run id is checked. */
const CYCLE_DIGITS = 8;

/**
 * Why `runId` cannot name a run, or undefined when it can: every adapter the run publishes
 * is served as adapterModelName(runId, cycle), which must be a valid adapter name for any
 * cycle (the run can be extended while it runs).
 */
export function runIdProblem(runId: string): string | undefined {
  const longest = adapterModelName(runId, 10 ** CYCLE_DIGITS - 1);
  if (ADAPTER_NAME_PATTERN.test(longest)) return undefined;
  const room = 200 - adapterModelName('', 10 ** CYCLE_DIGITS - 1).length;
  const shown = runId.length > 40 ? `${runId.slice(0, 40)}…` : runId;
  return (
    `run id "${shown}" (${runId.length} characters) is too long to name its adapters ` +
    `(archloop-<runId>-cycle-<n> must match ${ADAPTER_NAME_PATTERN.source}): use at most ${room} characters ` +
    `(fewer when it holds characters other than A-Z a-z 0-9 . _ -, which are replaced and a hash added)`
  );
}
