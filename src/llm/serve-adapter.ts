/**
 * Serving a finished LoRA adapter: load it into the run's endpoint under a stable name and
 * check that the endpoint lists it; and recovery, since a restarted server forgets
 * runtime-loaded adapters. Used by publishing (src/activities/publish.ts) and by sampling,
 * which reloads its adapter when the endpoint answers "unknown model".
 */
import { cpSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../core/config';
import { sha256 } from '../core/prompts';
import { loadRunConfig } from '../db/runs';
import { artifactsDir } from '../env';
import { adapterByModelName, type AdapterRow } from '../db/adapters';
import type { Queryable } from '../db/pool';
import { adapterModelName } from '../core/run-id';
import type { LlmLogger } from './client';
import { resolveEndpoint } from './endpoint';
import { LlmError } from './errors';
import { llmClientFromConfig } from './from-config';
import { loadLoraAdapter } from './lora-admin';

/** Loads `adapter` into the run's endpoint and waits until it is listed; returns the served name. */
export async function serveAdapter(db: Queryable, adapter: AdapterRow, options: { signal?: AbortSignal; log?: LlmLogger } = {}): Promise<string> {
  const config = await loadRunConfig(db, adapter.run_id);
  const name = adapter.model_name ?? adapterModelName(adapter.run_id, adapter.cycle);
  const outcome = await loadLoraAdapter(resolveEndpoint(config.llm), { name, path: adapter.path }, {
    timeoutMs: config.llm.requestTimeoutS * 1000,
    signal: options.signal,
  });
  const served = await llmClientFromConfig(config, { signal: options.signal }).listModels();
  if (!served.includes(name)) {
    // Retryable: an endpoint that has just loaded an adapter may list it a moment later.
    throw new LlmError('server-error', `adapter ${name} was ${outcome} but the endpoint lists only: ${served.join(', ')}`);
  }
  options.log?.info('adapter served', { adapterId: adapter.id, model: name, outcome });
  return name;
}

/**
 * Runs `work` against `model`; when the endpoint has forgotten that model and it is one of
 * our finished adapters, loads the adapter again and runs `work` once more.
 */
export async function withAdapterRecovery<T>(
  db: Queryable,
  model: string,
  work: () => Promise<T>,
  options: { signal?: AbortSignal; log?: LlmLogger } = {},
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const adapter = error instanceof LlmError && error.kind === 'unknown-model' ? await adapterByModelName(db, model) : undefined;
    if (!adapter || adapter.status === 'training') throw error;
    options.log?.warn('the endpoint lost an adapter; loading it again', { model, adapterId: adapter.id });
    await serveAdapter(db, adapter, options);
    return work();
  }
}

/**
 * Serves a PEFT adapter directory outside any run (preflight, compare): copied under the
 * artifacts directory, the only place the embedded server loads adapters from, and loaded
 * under a name derived from its path. Returns the served name.
 */
export async function serveAdapterDir(config: RunConfig, dir: string, purpose: string): Promise<string> {
  const source = path.resolve(dir);
  if (!existsSync(path.join(source, 'adapter_config.json'))) throw new Error(`no PEFT adapter at ${source} (adapter_config.json missing)`);
  const name = `${purpose}-${sha256(source).slice(0, 12)}`;
  const target = path.join(artifactsDir(), purpose, name);
  rmSync(target, { recursive: true, force: true });
  cpSync(source, target, { recursive: true });
  await loadLoraAdapter(resolveEndpoint(config.llm), { name, path: target }, { timeoutMs: config.llm.requestTimeoutS * 1000 });
  return name;
}
