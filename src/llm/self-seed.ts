/**
 * The self-seed phase (rejection sampling, as in STaR / expert iteration): the base model
 * writes programs for the run's own task and prompts, the sandbox keeps those that validate
 * at the run's shape (repaired ones too, paired with their design request so the model
 * learns to write them in one go), structural duplicates are dropped, and what is left
 * becomes seed pairs in exactly the form the model is sampled with. Unlike LEMUR's programs
 * these need no rewriting and show the skill the base model misses most: sizing the first
 * linear layer at this very input shape.
 *
 * Seeds: SELF_SEED_BASE upward, disjoint from compare's range (COMPARE_SEED), so a
 * comparison never measures on the samples the adapter was trained on. Resumable: each
 * batch's outcome is kept in the cache as it completes; the set is keyed by everything
 * that decides it, so a run finds it without sampling.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { RunConfig } from '../core/config';
import { completionAfter } from '../core/header-fit';
import { promptMessages, sha256, type RenderedPrompt, type TrainingPair } from '../core/prompts';
import type { Queryable } from '../db/pool';
import { writeAtomic } from '../files';
import { batchPrompts } from './prompts';
import type { LlmClient } from './client';
import { COMPARE_SEED } from './compare';
import { runPreflight } from './preflight';
import { seedCacheRoot } from './seed-adapter';

export const SELF_SEED_BASE = 1_500_000_000;
// The self-seed range ends where compare's begins.
const SELF_SEED_LIMIT = COMPARE_SEED - SELF_SEED_BASE;

const BatchFile = z.object({
  first: z.number().int(),
  promptHash: z.string(),
  samples: z.array(z.object({ index: z.number().int(), validFirst: z.boolean(), valid: z.boolean(), code: z.string().nullable(), structuralHash: z.string().nullable() })),
});

export interface SelfSeedSet {
  key: string;
  dir: string;
  pairs: TrainingPair[];
  sampled: number;
  validFirst: number;
  validAfterRepair: number;
  /** Valid programs dropped as structural (or textual) duplicates of an earlier one. */
  duplicates: number;
  /** Valid programs that could not continue the prefilled header (a repair that rewrote the file oddly). */
  noFit: number;
}

interface Plan {
  key: string;
  dir: string;
  batch: number;
  prompts: Map<number, RenderedPrompt>;
}

async function plan(db: Queryable, config: RunConfig): Promise<Plan> {
  const { selfSamples: samples } = config.lora;
  const batch = Math.max(1, config.sampling.samplesPerActivity);
  if (samples > SELF_SEED_LIMIT) throw new Error(`lora.selfSamples may be at most ${SELF_SEED_LIMIT}`);
  const prompts = await batchPrompts(db, config, 'self-seed', samples, batch);
  const key = sha256(
    JSON.stringify({
      model: config.llm.model,
      samples,
      batch,
      seed: SELF_SEED_BASE,
      sampling: { ...config.sampling, samplesPerCycle: 0, baselineSamples: 0 },
      prompts: [...prompts.values()].map((p) => p.hash),
    }),
  ).slice(0, 24);
  return { key, dir: path.join(seedCacheRoot(), 'self', key), batch, prompts };
}

function readBatch(file: string): z.infer<typeof BatchFile> | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = BatchFile.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? parsed.data : undefined; // a damaged file is sampled again
}

/** The pairs of the batches found, in sample order; valid programs deduplicated by structure. */
function assemble(p: Plan): SelfSeedSet | undefined {
  const set: SelfSeedSet = { key: p.key, dir: p.dir, pairs: [], sampled: 0, validFirst: 0, validAfterRepair: 0, duplicates: 0, noFit: 0 };
  const seen = new Set<string>();
  for (const [first, prompt] of p.prompts) {
    const batch = readBatch(path.join(p.dir, `batch-${first}.json`));
    if (!batch || batch.promptHash !== prompt.hash) return undefined;
    for (const sample of batch.samples) {
      set.sampled++;
      if (sample.validFirst) set.validFirst++;
      if (!sample.valid || sample.code === null) continue;
      set.validAfterRepair++;
      const identity = sample.structuralHash ?? sha256(sample.code);
      if (seen.has(identity)) {
        set.duplicates++;
        continue;
      }
      seen.add(identity);
      const made = completionAfter(prompt.prefill, sample.code);
      if ('reason' in made) set.noFit++;
      else set.pairs.push({ messages: promptMessages(prompt), completion: made.completion });
    }
  }
  return set;
}

/** The self-seed set as cached, or undefined when it has not been sampled (whole) yet. */
export async function cachedSelfSeed(db: Queryable, config: RunConfig): Promise<SelfSeedSet | undefined> {
  return assemble(await plan(db, config));
}

/** Samples what is missing of the self-seed set (resumable), then returns it. */
export async function buildSelfSeed(db: Queryable, config: RunConfig, client: LlmClient, log: (line: string) => void = () => {}): Promise<SelfSeedSet> {
  const p = await plan(db, config);
  mkdirSync(p.dir, { recursive: true });
  for (const [first, prompt] of p.prompts) {
    const file = path.join(p.dir, `batch-${first}.json`);
    if (readBatch(file)?.promptHash === prompt.hash) continue;
    const size = Math.min(p.batch, config.lora.selfSamples - first);
    const report = await runPreflight(config, prompt, client, { samples: size, batch: size, seed: SELF_SEED_BASE + first, log: (line) => log(`samples ${first}–${first + size - 1}: ${line}`) });
    const samples = report.perSample.map((s) => ({ index: first + s.index, validFirst: s.validFirst, valid: s.valid, code: s.code, structuralHash: s.structuralHash }));
    writeAtomic(file, `${JSON.stringify({ first, promptHash: prompt.hash, samples })}\n`);
    log(`samples ${first}–${first + size - 1}: ${report.validFirst} valid at the first attempt, ${report.validAfterRepair} after repair`);
  }
  return assemble(p)!;
}
