/**
 * The seed fine-tune (cycle 0) is where a small model learns the contract from the seed
 * corpus — the paper's "memorization" phase — and it takes many steps: far more than a CPU
 * demo can afford inside its budget. So its result is cached per machine, keyed by what
 * decides it (base model, the exact pairs, the LoRA settings), and trained once: by the
 * first run that needs it, or ahead of time with `archloop seed-adapter`. The trainer
 * checkpoints into the cache, so a killed build resumes; a finished one is reused at once.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../core/config';
import { sha256 } from '../core/prompts';
import { modelsCacheDir } from '../env';
import { writeAtomic } from '../files';
import { runTrainer, trainerJob, writeTrainerJob, type DoneEvent, type ProgressEvent } from './trainer';
import type { PairSet } from './finetune-pairs';

export function seedCacheRoot(): string {
  return path.resolve(process.env.ARCHLOOP_SEED_CACHE ?? path.join(modelsCacheDir(), 'seed-adapters'));
}

/** Cache key: everything that decides the seed adapter (not where files are written). */
export function seedAdapterKey(baseModel: string, set: Pick<PairSet, 'dataHash'>, config: RunConfig): string {
  const { outputDir: _o, pairsFile: _p, checkpointEvery: _c, ...decides } = trainerJob(config, { baseModel, pairsFile: '-', outputDir: '-', previousAdapter: null }, true);
  return sha256(JSON.stringify({ ...decides, dataHash: set.dataHash })).slice(0, 24);
}

export interface SeedAdapter {
  /** The cache directory's adapter (PEFT format). */
  adapterDir: string;
  key: string;
  done: DoneEvent;
  /** True when it was found finished in the cache. */
  cached: boolean;
}

/** Trains the seed adapter into the cache, or finds it there finished. */
export async function seedAdapter(
  config: RunConfig,
  baseModel: string,
  set: PairSet,
  options: { signal?: AbortSignal; onProgress?: (progress: ProgressEvent) => void } = {},
): Promise<SeedAdapter> {
  const key = seedAdapterKey(baseModel, set, config);
  const dir = path.join(seedCacheRoot(), key);
  const cached = existsSync(path.join(dir, 'lora', 'adapter', 'manifest.json'));
  mkdirSync(dir, { recursive: true });
  const pairsFile = path.join(dir, 'pairs.jsonl');
  const jobFile = path.join(dir, 'job.json');
  writeAtomic(pairsFile, set.jsonl);
  writeTrainerJob(jobFile, trainerJob(config, { baseModel, pairsFile, outputDir: path.join(dir, 'lora'), previousAdapter: null }, true));
  // A finished job prints its done line again without training; an interrupted one resumes.
  const done = await runTrainer(jobFile, { signal: options.signal, onProgress: options.onProgress });
  return { adapterDir: done.adapterDir, key, done, cached };
}

/** The finished seed adapters in the cache: key → adapter directory. */
export function cachedSeedAdapters(): Map<string, string> {
  const root = seedCacheRoot();
  const found = new Map<string, string>();
  if (!existsSync(root)) return found;
  for (const key of readdirSync(root).sort()) {
    const adapter = path.join(root, key, 'lora', 'adapter');
    if (existsSync(path.join(adapter, 'manifest.json'))) found.set(key, adapter);
  }
  return found;
}

/**
 * A seed adapter carries its measured comparison against the base model (`archloop compare
 * base seed`) beside it in the cache, so every run that reuses it can show it. The larger
 * sample is kept.
 */
export function attachComparison(key: string, comparison: { samples: number }): boolean {
  const file = path.join(seedCacheRoot(), key, 'comparison.json');
  const kept = seedComparison(key);
  if (kept && kept.samples > comparison.samples) return false;
  writeAtomic(file, `${JSON.stringify(comparison, null, 2)}\n`);
  return true;
}

export function seedComparison(key: string): ({ samples: number } & Record<string, unknown>) | undefined {
  const file = path.join(seedCacheRoot(), key, 'comparison.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { samples: number } & Record<string, unknown>;
  } catch {
    return undefined; // a damaged file is measured again, not trusted
  }
}
