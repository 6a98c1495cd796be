/**
 * checkSeedCorpus (control queue, once per run before cycle 0): validates the seed entries
 * not yet checked at the run's input shape and budget, so that only seeds that pass teach
 * (fine-tune pairs, prompt references). A run whose corpus has no valid entry, or none
 * short enough for lora.maxSeqLen, refuses to start, saying how to fix it. Heartbeats its progress; a retry resumes where it was.
 */
import { ApplicationFailure, cancellationSignal, Context, log } from '@temporalio/activity';
import type pg from 'pg';
import { checkSeeds } from '../corpus/check-seeds';
import { describeSummary } from '../corpus/checks';
import { loadPairSet } from '../llm/finetune-pairs';
import { selfSeedFailure } from './llm-support';
import { RunRef, type SeedCheckResult } from '../core/stages';
import { runSandbox } from '../sandbox/runner';
import { runInput } from './run-input';

export function createSeedActivities(deps: { pool: pg.Pool; runner?: typeof runSandbox }) {
  const { pool } = deps;
  return {
    async checkSeedCorpus(raw: RunRef): Promise<SeedCheckResult> {
      const { input: { runId }, config } = await runInput(pool, RunRef, raw);
      const summary = await checkSeeds(pool, config, {
        runner: deps.runner,
        signal: cancellationSignal(),
        onProgress: (done, total, name) => Context.current().heartbeat({ done, total, name }),
      });
      log.info('seed corpus checked', { runId, ...summary });
      if (summary.kept === 0 && config.lora.enabled) {
        throw ApplicationFailure.nonRetryable(
          `${describeSummary(summary)}. No seed entry is valid at this run's shape and budget, so there is nothing to fine-tune on: ` +
            'import more with `archloop corpus import-lemur --limit N` (or raise contract.maxParams / maxFlops), then start the run again',
          'EmptySeedCorpus',
        );
      }
      if (config.lora.enabled && config.lora.seedFineTune) {
        // The seed fine-tune would fail hours later on an empty pair set: say so now.
        const set = await loadPairSet(pool, config, runId, 0).catch(selfSeedFailure);
        if (set.pairs.length === 0) {
          const noFit = Object.entries(set.skippedNoFit).map(([reason, n]) => `${n} ${reason}`);
          throw ApplicationFailure.nonRetryable(
            `none of the ${summary.kept} seed entries valid at this run's shape makes a fine-tune pair: ${set.skippedTooLong} longer than lora.maxSeqLen ` +
              `(${config.lora.maxSeqLen} tokens, prompt included)${noFit.length ? `, ${noFit.join('; ')} (cannot continue the prompt's prefilled header)` : ''}: ` +
              'raise lora.maxSeqLen, import more or shorter programs (`archloop corpus import-lemur --limit N --max-chars N`), or learn from the base model\'s own programs (lora.seedFrom self), then start the run again',
            'SeedPairsTooLong',
          );
        }
      }
      return { kept: summary.kept, checked: summary.checked, rejected: summary.rejected };
    },
  };
}
