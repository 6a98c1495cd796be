/**
 * fineTuneLora (gpu queue): LoRA fine-tuning on the corpus as of this cycle
 * (src/llm/finetune-job.ts writes the pairs and the job, runs the trainer and records the
 * adapter). Here: heartbeats with the trainer's step and loss, and failures Temporal must
 * not retry. A retry reruns the same job in the same outputDir, so the trainer resumes.
 */
import { ApplicationFailure, cancellationSignal, Context, log } from '@temporalio/activity';
import type pg from 'pg';
import { FineTuneInput, type FineTuneResult } from '../core/stages';
import { fineTuneCycle, FineTuneFailure } from '../llm/finetune-job';
import { TrainerError } from '../llm/trainer';
import { runInput } from './run-input';
import { keepAlive, selfSeedFailure } from './llm-support';

/** What no retry can mend: a missing self-seed set, an empty corpus, the trainer's own verdicts. */
function fineTuneFailure(error: unknown): never {
  if (error instanceof FineTuneFailure) throw ApplicationFailure.nonRetryable(error.message, error.type);
  if (error instanceof TrainerError) throw ApplicationFailure.nonRetryable(error.message, error.errorClass);
  return selfSeedFailure(error);
}

export function createFineTuneActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async fineTuneLora(raw: FineTuneInput): Promise<FineTuneResult> {
      const { input, config } = await runInput(pool, FineTuneInput, raw);
      return await fineTuneCycle(pool, config, input, {
        signal: cancellationSignal(),
        log,
        keepAlive,
        onProgress: (details) => Context.current().heartbeat(details),
      }).catch(fineTuneFailure);
    },
  };
}
