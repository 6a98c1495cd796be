/**
 * One sampling batch of a cycle, outside Temporal: samples [firstIndex, firstIndex + count)
 * from the LLM with the run's design prompt (prompts.ts). Idempotent per (run, cycle,
 * sample index): indexes already stored are skipped, so a rerun only asks for what is
 * missing. Each raw completion is stored before extraction runs on it.
 * The sampleBatch activity (src/activities/sample.ts) calls this.
 */
import type pg from 'pg';
import type { RunConfig } from '../core/config';
import { extractCode } from '../core/extract';
import { chatMessages, promptMessages, type RenderedPrompt } from '../core/prompts';
import { batchSeed } from '../core/sampling-seeds';
import type { SampleBatchInput, SampleBatchResult } from '../core/stages';
import { storableText } from '../core/storable-text';
import { sampledRows, storeCompletion, storeExtraction, unextracted } from '../db/candidates';
import { storePrompt } from '../db/prompts';
import type { LlmLogger, SampledChoice } from './client';
import { llmClientFromConfig, samplingParams, type ClientExtras } from './from-config';
import { buildDesignPrompt } from './prompts';
import { withAdapterRecovery } from './serve-adapter';

export interface SampleHooks {
  signal?: AbortSignal;
  log: LlmLogger;
  /** Backoff between LLM retries (tests shorten it); defaults to the config's llm.retry*DelayS. */
  backoff?: ClientExtras['backoff'];
  /** Keeps the caller alive while requests are in flight, with these details; returns its stop. */
  keepAlive: (details: () => unknown) => () => void;
  /** After each reply's choices are stored. */
  onStored: (progress: { stored: number; missing: number }) => void;
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
async function sampleMissing(pool: pg.Pool, batch: Batch, hooks: SampleHooks): Promise<number> {
  const { input, config, prompt, missing } = batch;
  const { log } = hooks;
  const client = llmClientFromConfig(config, { signal: hooks.signal, log, backoff: hooks.backoff });
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
      hooks.onStored({ stored: next, missing: missing.length });
    }
  };
  const stop = hooks.keepAlive(() => ({ stored: next, missing: missing.length }));
  try {
    // A restarted server forgets runtime-loaded adapters: load ours again, then go on.
    await withAdapterRecovery(pool, input.model, drain, { signal: hooks.signal, log });
    return next;
  } catch (error) {
    log.warn('sampling failed', { runId: input.runId, cycle: input.cycle, firstIndex: input.firstIndex, stored: next, error: (error as Error).message });
    throw error;
  } finally {
    stop();
  }
}

/** Fills the batch's missing sample indexes and returns its candidate rows. */
export async function sampleDesignBatch(pool: pg.Pool, config: RunConfig, input: SampleBatchInput, hooks: SampleHooks): Promise<SampleBatchResult> {
  const { runId, cycle, firstIndex, count } = input;

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
    const samples = await sampleMissing(pool, { input, config, prompt, missing }, hooks);
    hooks.log.info('sampled', { runId, cycle, firstIndex, samples, model: input.model, seconds: (Date.now() - started) / 1000 });
  }

  const rows = await sampledRows(pool, runId, cycle, firstIndex, count);
  return {
    candidateIds: rows.map((row) => row.id),
    extracted: rows.filter((row) => row.has_code).length,
  };
}
