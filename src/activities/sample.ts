/**
 * sampleBatch: samples [firstIndex, firstIndex + count) of a cycle from the LLM. Idempotent
 * per (run, cycle, sample index): indexes already stored are skipped, so a retry only asks
 * for what is missing. Each raw completion is stored before extraction runs on it.
 */
import { cancellationSignal, Context, log } from '@temporalio/activity';
import type pg from 'pg';
import { extractCode } from '../core/extract';
import type { RunConfig } from '../core/config';
import { chatMessages, promptMessages, type RenderedPrompt } from '../core/prompts';
import { SampleBatchInput, type SampleBatchResult } from '../core/stages';
import { loadRunConfig } from '../db/runs';
import { keepAlive, llmFailure } from './llm-support';
import { withAdapterRecovery } from '../llm/serve-adapter';
import { buildDesignPrompt } from '../llm/prompts';
import { batchSeed } from '../core/sampling-seeds';
import { storableText } from '../core/storable-text';
import type { SampledChoice } from '../llm/client';
import { llmClientFromConfig, samplingParams, type ClientExtras } from '../llm/from-config';
import { sampledRows, storeCompletion, storeExtraction, unextracted } from '../db/candidates';
import { storePrompt } from '../db/prompts';

export interface SampleDeps {
  pool: pg.Pool;
  /** Backoff between LLM retries (tests shorten it); defaults to the config's llm.retry*DelayS. */
  backoff?: ClientExtras['backoff'];
}

interface Batch {
  input: SampleBatchInput;
  config: RunConfig;
  prompt: RenderedPrompt;
  /** Sample indexes still to fill, in order. */
  missing: number[];
}

/** Raw completion first, then what extraction made of it. */
async function storeChoice(pool: pg.Pool, batch: Batch, sampleIndex: number, choice: SampledChoice): Promise<void> {
  const { runId, cycle, model } = batch.input;
  // Postgres text cannot hold U+0000, and an LLM can produce it: store and parse the same text.
  const text = storableText(choice.text);
  const id = await storeCompletion(pool, {
    runId,
    cycle,
    sampleIndex,
    model,
    promptHash: batch.prompt.hash,
    completion: text,
    usage: { ...choice.usage, finishReason: choice.finishReason, prefilledChars: batch.prompt.prefill.length },
  });
  await storeExtraction(pool, id, extractCode(text, choice.finishReason));
}

/** Samples the missing indexes, storing each choice as its request completes; returns how many. */
async function sampleMissing(deps: SampleDeps, batch: Batch): Promise<number> {
  const { pool } = deps;
  const { input, config, prompt, missing } = batch;
  const client = llmClientFromConfig(config, { signal: cancellationSignal(), log, backoff: deps.backoff });
  let next = 0;
  const drain = async () => {
    const batches = client.sample({
      model: input.model,
      messages: chatMessages(prompt.body),
      count: missing.length - next,
      params: samplingParams(config),
      // Sample index i always gets seed base + (i - firstIndex): a retry that asks only for
      // the missing indexes never reuses the seed of a sample already stored.
      seed: batchSeed(input) + (missing[next]! - input.firstIndex),
      ...(prompt.prefill ? { prefill: prompt.prefill } : {}),
    });
    for await (const choices of batches) {
      for (const choice of choices) await storeChoice(pool, batch, missing[next++]!, choice);
      Context.current().heartbeat({ stored: next, missing: missing.length });
    }
  };
  const stop = keepAlive(() => ({ stored: next, missing: missing.length }));
  try {
    // A restarted server forgets runtime-loaded adapters: load ours again, then go on.
    await withAdapterRecovery(pool, input.model, drain, { signal: cancellationSignal(), log });
    return next;
  } catch (error) {
    log.warn('sampling failed', { runId: input.runId, cycle: input.cycle, firstIndex: input.firstIndex, stored: next, error: (error as Error).message });
    throw llmFailure(error);
  } finally {
    stop();
  }
}

export function createSampleActivities(deps: SampleDeps) {
  const { pool } = deps;
  return {
    async sampleBatch(raw: SampleBatchInput): Promise<SampleBatchResult> {
      const input = SampleBatchInput.parse(raw);
      const { runId, cycle, firstIndex, count } = input;
      const config = await loadRunConfig(pool, runId);

      // A worker that died between storing a completion and extracting it: finish that first.
      for (const row of await unextracted(pool, runId, cycle, firstIndex, count)) {
        await storeExtraction(pool, row.id, extractCode(row.completion, row.finish_reason));
      }
      const stored = new Set((await sampledRows(pool, runId, cycle, firstIndex, count)).map((row) => row.sample_index));
      const missing = Array.from({ length: count }, (_, i) => firstIndex + i).filter((index) => !stored.has(index));

      if (missing.length > 0) {
        const prompt = await buildDesignPrompt(pool, config, input);
        await storePrompt(pool, prompt, promptMessages(prompt));
        const started = Date.now();
        const samples = await sampleMissing(deps, { input, config, prompt, missing });
        log.info('sampled', { runId, cycle, firstIndex, samples, model: input.model, seconds: (Date.now() - started) / 1000 });
      }

      const rows = await sampledRows(pool, runId, cycle, firstIndex, count);
      return {
        candidateIds: rows.map((row) => row.id),
        extracted: rows.filter((row) => row.has_code).length,
      };
    },
  };
}
