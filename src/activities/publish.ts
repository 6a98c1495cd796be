/**
 * publishAdapter: loads a finished adapter into the serving endpoint (vLLM's runtime LoRA
 * API) under a stable name, checks that the endpoint now lists it, records the name and
 * returns it as the model of the next cycle. Loading twice is harmless ("already loaded").
 */
import { ApplicationFailure, cancellationSignal, log } from '@temporalio/activity';
import type pg from 'pg';
import { PublishInput, type PublishResult } from '../core/stages';
import { loadRunConfig } from '../db/runs';
import { llmFailure } from './llm-support';
import { adapterById, markAdapterPublished, type AdapterRow } from '../db/adapters';
import { adapterModelName } from '../llm/artifacts';
import { resolveEndpoint } from '../llm/endpoint';
import { llmClientFromConfig } from '../llm/from-config';
import { loadLoraAdapter } from '../llm/lora-admin';
import type { Queryable } from '../db/pool';
import type { ControlActivities } from './contract';

/** Loads `adapter` into the run's endpoint and waits until it is listed; returns the served name. */
export async function serveAdapter(db: Queryable, adapter: AdapterRow, signal?: AbortSignal): Promise<string> {
  const config = await loadRunConfig(db, adapter.run_id);
  const name = adapter.model_name ?? adapterModelName(adapter.run_id, adapter.cycle);
  const outcome = await loadLoraAdapter(resolveEndpoint(config.llm), { name, path: adapter.path }, {
    timeoutMs: config.llm.requestTimeoutS * 1000,
    signal,
  });
  const served = await llmClientFromConfig(config, { signal }).listModels();
  if (!served.includes(name)) {
    throw ApplicationFailure.retryable(`adapter ${name} was ${outcome} but the endpoint lists only: ${served.join(', ')}`, 'adapter-not-listed');
  }
  log.info('adapter served', { adapterId: adapter.id, model: name, outcome });
  return name;
}

export function createPublishActivities(deps: { pool: pg.Pool }): Pick<ControlActivities, 'publishAdapter'> {
  const { pool } = deps;
  return {
    async publishAdapter(raw): Promise<PublishResult> {
      const { adapterId } = PublishInput.parse(raw);
      const adapter = await adapterById(pool, adapterId);
      if (!adapter) throw ApplicationFailure.nonRetryable(`adapter ${adapterId} does not exist`, 'missing-adapter');
      if (adapter.status === 'training') {
        throw ApplicationFailure.nonRetryable(`adapter ${adapterId} has not finished training`, 'adapter-not-ready');
      }
      let model: string;
      try {
        model = await serveAdapter(pool, adapter, cancellationSignal());
      } catch (error) {
        throw llmFailure(error);
      }
      await markAdapterPublished(pool, adapter.id, model);
      return { model };
    },
  };
}
