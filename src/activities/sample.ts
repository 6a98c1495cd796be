/**
 * sampleBatch (control queue): samples [firstIndex, firstIndex + count) of a cycle
 * (src/llm/sample-batch.ts; idempotent per sample index, so a retry only asks for what is
 * missing). Here: heartbeats while requests are in flight, LLM errors as retryable or not.
 */
import { cancellationSignal, Context, log } from '@temporalio/activity';
import type pg from 'pg';
import { SampleBatchInput, type SampleBatchResult } from '../core/stages';
import type { ClientExtras } from '../llm/from-config';
import { sampleDesignBatch } from '../llm/sample-batch';
import { runInput } from './run-input';
import { keepAlive, llmFailure } from './llm-support';

export interface SampleDeps {
  pool: pg.Pool;
  /** Backoff between LLM retries (tests shorten it); defaults to the config's llm.retry*DelayS. */
  backoff?: ClientExtras['backoff'];
}

export function createSampleActivities(deps: SampleDeps) {
  const { pool } = deps;
  return {
    async sampleBatch(raw: SampleBatchInput): Promise<SampleBatchResult> {
      const { input, config } = await runInput(pool, SampleBatchInput, raw);
      return await sampleDesignBatch(pool, config, input, {
        signal: cancellationSignal(),
        log,
        backoff: deps.backoff,
        keepAlive,
        onStored: (progress) => Context.current().heartbeat(progress),
      }).catch((error: unknown) => {
        throw llmFailure(error);
      });
    },
  };
}
