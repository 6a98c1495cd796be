/**
 * One more attempt at a candidate that failed extraction or validation, outside Temporal.
 * `feedback` sends the program back with what is wrong, where, and what to write instead
 * (prompts/repair-v2.md, src/core/repair.ts); `resample` asks the design prompt again for a
 * fresh program (the request: repairRequest in prompts.ts). The answer is stored as its own
 * candidate row (attempt + 1, parent = the failed row) before anything parses it.
 * Idempotent: a rerun finds the stored attempt and only finishes its extraction.
 * The repairCandidate activity (src/activities/repair.ts) calls this.
 */
import type pg from 'pg';
import type { RunConfig } from '../core/config';
import { extractCode } from '../core/extract';
import { unchangedAsFailure } from '../core/repair';
import { repairSeed } from '../core/sampling-seeds';
import type { RepairResult } from '../core/stages';
import { storableText } from '../core/storable-text';
import { attemptRow, repairSource, storeCompletion, storeExtraction, type RepairSource } from '../db/candidates';
import { storePrompt } from '../db/prompts';
import type { LlmLogger, SampledChoice } from './client';
import { LlmError } from './errors';
import { llmClientFromConfig, samplingParams } from './from-config';
import { repairRequest, rootPrompt, type RootPrompt } from './prompts';

/** Resampling needs the design prompt of the first attempt, and none was stored. */
export class MissingPrompt extends Error {
  override name = 'MissingPrompt';
}

export interface RepairHooks {
  signal?: AbortSignal;
  log: LlmLogger;
  /** Keeps the caller alive while the request is in flight, with these details; returns its stop. */
  keepAlive: (details: () => unknown) => () => void;
}

/** The row's design prompt, as resampling reuses it. */
function storedRootPrompt(source: RepairSource, config: RunConfig): RootPrompt {
  if (source.root_body === null && config.sampling.repair === 'resample') {
    throw new MissingPrompt(`candidate ${source.id} has no stored design prompt to resample`);
  }
  return rootPrompt(source, config);
}

/** Samples and stores the attempt after `failed` (of the run `config` belongs to). */
export async function repairAttempt(pool: pg.Pool, config: RunConfig, failed: RepairSource, hooks: RepairHooks): Promise<RepairResult> {
  const { log } = hooks;
  const key = { runId: failed.run_id, cycle: failed.cycle, sampleIndex: failed.sample_index, attempt: failed.attempt + 1 };
  const stored = await attemptRow(pool, key);
  if (stored) {
    if (stored.status === 'sampled' && !stored.has_code && stored.completion !== null) {
      await storeExtraction(pool, stored.id, extractCode(stored.completion, stored.finish_reason));
    }
    return { candidateId: stored.id, attempt: key.attempt };
  }

  // An attempt that gave no program is repaired from the last attempt that had one.
  let source = failed;
  while (source.code === null && source.parent_id !== null) source = await repairSource(pool, source.parent_id);
  const failedProgram = { code: source.code ?? '', failureClass: source.failure_class ?? 'crash', message: source.failure_message ?? '' };
  const { prompt, messages } = repairRequest(config, failedProgram, storedRootPrompt(failed, config));
  await storePrompt(pool, prompt, [...messages, ...(prompt.prefill ? [{ role: 'assistant' as const, content: prompt.prefill }] : [])]);
  const client = llmClientFromConfig(config, { signal: hooks.signal, log });
  const stop = hooks.keepAlive(() => ({ candidateId: failed.id, attempt: key.attempt }));
  const started = Date.now();
  let choice: SampledChoice | undefined;
  try {
    for await (const choices of client.sample({
      model: source.model,
      messages,
      count: 1,
      params: samplingParams(config),
      seed: repairSeed(key),
      ...(prompt.prefill ? { prefill: prompt.prefill } : {}),
    })) {
      choice = choices[0];
    }
  } finally {
    stop();
  }
  if (!choice) throw new LlmError('bad-response', 'the LLM returned no choice');
  const text = storableText(choice.text);
  const id = await storeCompletion(pool, {
    ...key,
    parentId: failed.id,
    model: failed.model,
    promptHash: prompt.hash,
    completion: text,
    usage: { ...choice.usage, finishReason: choice.finishReason, prefilledChars: prompt.prefill.length },
  });
  const extraction = unchangedAsFailure(extractCode(text, choice.finishReason), source.code);
  await storeExtraction(pool, id, extraction);
  log.info('candidate repaired', {
    candidateId: failed.id,
    newCandidateId: id,
    attempt: key.attempt,
    mode: config.sampling.repair,
    failureClass: failed.failure_class,
    extracted: extraction.ok,
    seconds: (Date.now() - started) / 1000,
  });
  return { candidateId: id, attempt: key.attempt };
}
