/**
 * Validates the seed entries not yet checked under a run's profile, through the same
 * sandbox a candidate passes, and stores each verdict (src/corpus/checks.ts). Resumable:
 * every verdict is stored as it comes, so a retry or a second run checks only the rest.
 */
import os from 'node:os';
import type { RunConfig } from '../core/config';
import type { Queryable } from '../db/pool';
import { buildRequest, settingsFromEnv } from '../sandbox/request';
import { validationRow } from '../sandbox/rows';
import { runSandbox } from '../sandbox/runner';
import { checkSummary, storeCheck, uncheckedSeeds, type CheckSummary } from '../db/corpus';
import { profileOf } from './checks';

export interface CheckSeedsOptions {
  runner?: typeof runSandbox;
  /** Called after each entry: how many are done of how many were unchecked. */
  onProgress?: (done: number, total: number, name: string | null) => void;
  /** Sandboxes at once (default: half the cores, at least one). */
  concurrency?: number;
  signal?: AbortSignal;
}

export async function checkSeeds(
  db: Queryable,
  config: Pick<RunConfig, 'dataset' | 'contract' | 'training'>,
  options: CheckSeedsOptions = {},
): Promise<CheckSummary> {
  const profile = profileOf(config);
  const pending = await uncheckedSeeds(db, profile);
  const runner = options.runner ?? runSandbox;
  const settings = settingsFromEnv();
  const concurrency = options.concurrency ?? Math.max(1, Math.floor(os.availableParallelism() / 2));
  let next = 0;
  let done = 0;
  const work = async () => {
    for (let i = next++; i < pending.length; i = next++) {
      if (options.signal?.aborted) throw new Error('seed check cancelled');
      const entry = pending[i]!;
      const outcome = await runner(buildRequest('validate', entry.code, config, settings), { signal: options.signal });
      if (outcome.kind !== 'validate') throw new Error(`runner answered a ${outcome.kind} result to a validate request`);
      const row = validationRow(outcome);
      await storeCheck(db, profile, {
        corpusId: entry.id,
        valid: row.valid,
        failureClass: row.failureClass,
        failureMessage: row.failureMessage,
        params: row.params,
        flops: row.flops,
        structuralHash: row.structuralHash,
      });
      options.onProgress?.(++done, pending.length, entry.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, pending.length) }, work));
  return checkSummary(db, profile);
}
