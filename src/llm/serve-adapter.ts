/**
 * Serving a finished LoRA adapter: load it into the run's endpoint under a stable name and
 * check that the endpoint lists it; and recovery, since a restarted server forgets
 * runtime-loaded adapters. Used by publishing (src/activities/publish.ts) and by sampling,
 * which reloads its adapter when the endpoint answers "unknown model".
 */
import { loadRunConfig } from '../db/runs';
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
