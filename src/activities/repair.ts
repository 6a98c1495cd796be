/**
 * repairCandidate (control queue): one more attempt at a candidate that failed extraction
 * or validation. `feedback` sends the program back with what is wrong, where, and what to
 * write instead (prompts/repair-v2.md, src/core/repair.ts); `resample` asks the design
 * prompt again for a fresh program. The answer is stored as its own candidate row
 * (attempt + 1, parent = the failed row) before anything parses it. Idempotent: a retry
 * finds the stored attempt and only finishes its extraction.
 */
import { cancellationSignal, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { extractCode } from '../core/extract';
import { unchangedAsFailure } from '../core/repair';
import type { RunConfig } from '../core/config';
import { repairSeed } from '../core/sampling-seeds';
import { storableText } from '../core/storable-text';
import { CandidateRef, type RepairResult } from '../core/stages';
import { loadRunConfig } from '../db/runs';
import { keepAlive, llmFailure } from './llm-support';
import { llmClientFromConfig, samplingParams } from '../llm/from-config';
import { repairRequest, rootPrompt, type RootPrompt } from '../llm/prompts';
import { attemptRow, repairSource, storeCompletion, storeExtraction, type RepairSource } from '../db/candidates';
import { storePrompt } from '../db/prompts';

/** The row's design prompt, as resampling reuses it. */
function storedRootPrompt(source: RepairSource, config: RunConfig): RootPrompt {
  if (source.root_body === null && config.sampling.repair === 'resample') {
    throw ApplicationFailure.nonRetryable(`candidate ${source.id} has no stored design prompt to resample`, 'MissingPrompt');
  }
  return rootPrompt(source, config);
}

export function createRepairActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async repairCandidate(raw: CandidateRef): Promise<RepairResult> {
      const { candidateId } = CandidateRef.parse(raw);
      const failed = await repairSource(pool, candidateId);
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
      const config = await loadRunConfig(pool, failed.run_id);
      const failedProgram = { code: source.code ?? '', failureClass: source.failure_class ?? 'crash', message: source.failure_message ?? '' };
      const { prompt, messages } = repairRequest(config, failedProgram, storedRootPrompt(failed, config));
      await storePrompt(pool, prompt, [...messages, ...(prompt.prefill ? [{ role: 'assistant' as const, content: prompt.prefill }] : [])]);
      const client = llmClientFromConfig(config, { signal: cancellationSignal(), log });
      const stop = keepAlive(() => ({ candidateId, attempt: key.attempt }));
      const started = Date.now();
      let choice;
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
      } catch (error) {
        throw llmFailure(error);
      } finally {
        stop();
      }
      if (!choice) throw ApplicationFailure.retryable('the LLM returned no choice', 'LlmBadResponse');
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
        candidateId,
        newCandidateId: id,
        attempt: key.attempt,
        mode: config.sampling.repair,
        failureClass: failed.failure_class,
        extracted: extraction.ok,
        seconds: (Date.now() - started) / 1000,
      });
      return { candidateId: id, attempt: key.attempt };
    },
  };
}
