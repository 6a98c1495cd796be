/**
 * publishAdapter: loads a finished adapter into the serving endpoint (vLLM's runtime LoRA
 * API) under a stable name, checks that the endpoint now lists it, records the name and
 * returns it as the model of the next cycle. Loading twice is harmless ("already loaded").
 */
import { ApplicationFailure, cancellationSignal, log } from '@temporalio/activity';
import type pg from 'pg';
import { PublishInput, type PublishResult } from '../core/stages';
import { adapterById, markAdapterPublished } from '../db/adapters';
import { serveAdapter } from '../llm/serve-adapter';
import { llmFailure } from './llm-support';

export function createPublishActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async publishAdapter(raw: PublishInput): Promise<PublishResult> {
      const { adapterId } = PublishInput.parse(raw);
      const adapter = await adapterById(pool, adapterId);
      if (!adapter) throw ApplicationFailure.nonRetryable(`adapter ${adapterId} does not exist`, 'AdapterNotFound');
      if (adapter.status === 'training') {
        throw ApplicationFailure.nonRetryable(`adapter ${adapterId} has not finished training`, 'AdapterNotReady');
      }
      let model: string;
      try {
        model = await serveAdapter(pool, adapter, { signal: cancellationSignal(), log });
      } catch (error) {
        throw llmFailure(error);
      }
      await markAdapterPublished(pool, adapter.id, model);
      return { model };
    },
  };
}
