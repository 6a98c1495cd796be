/**
 * One cycle's LoRA fine-tune, outside Temporal: the pairs (JSONL, hashed) and the trainer
 * job written under artifacts/<run>/cycle-<n>/, the Python trainer run there, and the
 * adapter row with its manifest. Cycle 0 may come from the per-machine seed cache
 * (seed-adapter.ts). A rerun of the same cycle reuses the same outputDir, so the trainer
 * resumes from its checkpoint; a finished adapter row is returned as it is.
 * The fineTuneLora activity (src/activities/finetune.ts) calls this and maps its errors.
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { RunConfig } from '../core/config';
import type { FineTuneInput, FineTuneResult } from '../core/stages';
import { adapterById, markAdapterReady, upsertTrainingAdapter, type AdapterRow } from '../db/adapters';
import { writeAtomic } from '../files';
import { cycleDir, resolveBaseModel } from './artifacts';
import type { LlmLogger } from './client';
import { loadPairSet, type PairSet } from './finetune-pairs';
import { seedAdapter, seedComparison } from './seed-adapter';
import { runTrainer, TrainerCrash, trainerJob, writeTrainerJob, type ProgressEvent } from './trainer';

/** A fine-tune that no retry can mend; `type` is the failure type the activity reports. */
export class FineTuneFailure extends Error {
  override name = 'FineTuneFailure';
  constructor(
    message: string,
    readonly type: string,
  ) {
    super(message);
  }
}

export interface FineTuneHooks {
  signal?: AbortSignal;
  log: LlmLogger;
  /** Keeps the caller alive while a long step runs, with these details; returns its stop. */
  keepAlive: (details: () => unknown) => () => void;
  /** Each trainer progress event, with the phase it belongs to. */
  onProgress: (details: { phase: string } & ProgressEvent) => void;
}

/** What the adapter's manifest records about the pairs it learned from. */
function pairsManifest(set: PairSet, pairsFile: string): Record<string, unknown> {
  return {
    pairs: set.pairs.length,
    corpusEntries: new Set(set.entryIds).size,
    own: set.own,
    passes: set.passes,
    replayed: set.replayed,
    note: set.note,
    skippedTooLong: set.skippedTooLong,
    skippedOverCap: set.skippedOverCap,
    skippedNoFit: set.skippedNoFit,
    rewritten: set.rewritten,
    dataHash: set.dataHash,
    pairsFile,
  };
}

function summaryOf(row: AdapterRow, pairs: number): FineTuneResult {
  const steps = typeof row.manifest.steps === 'number' ? row.manifest.steps : 0;
  const finalLoss = typeof row.manifest.finalLoss === 'number' ? row.manifest.finalLoss : null;
  return { adapterId: row.id, steps, finalLoss, pairs };
}

async function previousAdapterPath(pool: pg.Pool, id: number | null): Promise<string | null> {
  if (id === null) return null;
  const previous = await adapterById(pool, id);
  if (!previous || previous.status === 'training') {
    throw new FineTuneFailure(`previous adapter ${id} ${previous ? 'never finished training' : 'does not exist'}`, 'PreviousAdapterNotFound');
  }
  return previous.path;
}

/**
 * Cycle 0 from the per-machine cache (src/llm/seed-adapter.ts): trained there once, then
 * copied into the run's artifacts, where the serving endpoint may load it from.
 */
async function cachedSeedFineTune(
  pool: pg.Pool,
  ctx: { config: RunConfig; baseModel: string; set: PairSet; adapter: AdapterRow; dir: string; pairsFile: string; runId: string },
  hooks: FineTuneHooks,
): Promise<FineTuneResult> {
  const { set, adapter } = ctx;
  let last: ProgressEvent | undefined;
  const stop = hooks.keepAlive(() => ({ phase: last ? 'training the seed adapter' : 'starting', ...last }));
  try {
    const seed = await seedAdapter(ctx.config, ctx.baseModel, set, {
      signal: hooks.signal,
      onProgress: (progress) => {
        last = progress;
        hooks.onProgress({ phase: 'training the seed adapter', ...progress });
      },
    });
    const target = path.join(ctx.dir, 'lora', 'adapter');
    rmSync(target, { recursive: true, force: true });
    cpSync(seed.adapterDir, target, { recursive: true });
    const manifest = {
      steps: seed.done.steps,
      finalLoss: seed.done.finalLoss,
      ...pairsManifest(set, ctx.pairsFile),
      seedCache: { key: seed.key, dir: path.dirname(path.dirname(seed.adapterDir)), reused: seed.cached },
      // The adapter's measured comparison against the base model, if one was made (archloop compare base seed).
      comparison: seedComparison(seed.key) ?? null,
      trainer: seed.done.manifest,
    };
    await markAdapterReady(pool, adapter.id, target, manifest);
    hooks.log.info('seed adapter ready', { runId: ctx.runId, adapterId: adapter.id, steps: seed.done.steps, reused: seed.cached, key: seed.key });
    return { adapterId: adapter.id, steps: seed.done.steps, finalLoss: seed.done.finalLoss, pairs: set.pairs.length };
  } finally {
    stop();
  }
}

/** Fine-tunes the adapter of `input.cycle` on the corpus as of that cycle and records it. */
export async function fineTuneCycle(pool: pg.Pool, config: RunConfig, input: FineTuneInput, hooks: FineTuneHooks): Promise<FineTuneResult> {
  const { runId, cycle } = input;
  const { log } = hooks;
  const set: PairSet = await loadPairSet(pool, config, runId, cycle);
  if (set.pairs.length === 0) {
    throw new FineTuneFailure(
      `no training pairs for run ${runId} cycle ${cycle}: the corpus is empty` +
        (set.skippedTooLong ? ` (${set.skippedTooLong} entries longer than lora.maxSeqLen)` : ' (run `archloop corpus import-lemur`)'),
      'empty-corpus',
    );
  }

  const dir = cycleDir(runId, cycle);
  const outputDir = path.join(dir, 'lora');
  const pairsFile = path.join(dir, 'pairs.jsonl');
  const jobFile = path.join(dir, 'job.json');
  const stopPreparing = hooks.keepAlive(() => ({ phase: 'preparing the base model' }));
  const baseModel = await resolveBaseModel(config.lora.baseModel, hooks.signal).finally(stopPreparing);
  const adapter = await upsertTrainingAdapter(pool, {
    runId,
    cycle,
    path: path.join(outputDir, 'adapter'),
    baseModel,
    parentId: input.previousAdapterId,
    dataHash: set.dataHash,
  });
  if (adapter.status !== 'training') return summaryOf(adapter, set.pairs.length);

  mkdirSync(dir, { recursive: true });
  writeAtomic(pairsFile, set.jsonl);
  if (cycle === 0 && config.lora.seedCache) {
    return await cachedSeedFineTune(pool, { config, baseModel, set, adapter, dir, pairsFile, runId }, hooks);
  }
  const previousAdapter = await previousAdapterPath(pool, input.previousAdapterId);
  writeTrainerJob(jobFile, trainerJob(config, { baseModel, pairsFile, outputDir, previousAdapter }, cycle === 0));
  log.info('fine-tuning', { runId, cycle, pairs: set.pairs.length, own: set.own, passes: set.passes, replayed: set.replayed, dataHash: set.dataHash, skippedTooLong: set.skippedTooLong, skippedNoFit: set.skippedNoFit, jobFile });
  if (set.note) log.warn(set.note, { runId, cycle });

  let last: ProgressEvent | undefined;
  const stop = hooks.keepAlive(() => ({ phase: last ? 'training' : 'starting', ...last }));
  try {
    const done = await runTrainer(jobFile, {
      signal: hooks.signal,
      onProgress: (progress) => {
        if (!last) log.info('trainer started', { runId, cycle, resumedAt: progress.step, totalSteps: progress.totalSteps });
        last = progress;
        hooks.onProgress({ phase: 'training', ...progress });
      },
    });
    const manifest = {
      steps: done.steps,
      finalLoss: done.finalLoss,
      ...pairsManifest(set, pairsFile),
      jobFile,
      trainer: done.manifest,
    };
    await markAdapterReady(pool, adapter.id, done.adapterDir, manifest);
    log.info('adapter ready', { runId, cycle, adapterId: adapter.id, steps: done.steps, finalLoss: done.finalLoss });
    return { adapterId: adapter.id, steps: done.steps, finalLoss: done.finalLoss, pairs: set.pairs.length };
  } catch (error) {
    if (error instanceof TrainerCrash) log.warn('trainer crashed; a retry resumes from its checkpoint', { runId, cycle, error: error.message });
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FineTuneFailure(`cannot start the LoRA trainer: ${(error as Error).message} (run \`npm run setup\`)`, 'TrainerMissing');
    }
    throw error;
  } finally {
    stop();
  }
}
