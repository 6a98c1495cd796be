/**
 * `archloop compare A B --samples N`: a paired comparison of two models on the same prompts
 * and seeds (src/llm/compare.ts). A and B: `base` (the config's model), `seed` (this preset's
 * cached seed adapter), a cached seed adapter's key, a model or adapter name the endpoint
 * serves, or a PEFT adapter directory. When A is the base model and B a cached seed adapter,
 * the comparison is kept beside the adapter, and every run that uses it shows it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { RunConfig } from '../core/config';
import { formatPValue, formatRate, minDiscordantForSignificance, type PairedOutcome } from '../core/paired';
import { checkSeeds } from '../corpus/check-seeds';
import { profileOf } from '../corpus/checks';
import { teachingSeedPrograms } from '../db/corpus';
import { getPool } from '../db/pool';
import { resolveBaseModel } from '../llm/artifacts';
import { batchPrompts } from '../llm/prompts';
import { compareModels, COMPARE_SEED, type Comparison, type CompareSide } from '../llm/compare';
import { llmClientFromConfig } from '../llm/from-config';
import { loadPairSet } from '../llm/finetune-pairs';
import { attachComparison, cachedSeedAdapters, seedAdapterKey } from '../llm/seed-adapter';
import { serveAdapterDir } from '../llm/serve-adapter';
import { readCliConfig } from './config-file';
import { positiveInt, formatCounts } from './parse';

interface ResolvedSide extends CompareSide {
  /** The seed-cache key, when the side is a cached seed adapter. */
  seedKey?: string;
}

/** The key of this config's seed adapter, the seed corpus checked by the caller (the base model is converted once per machine, then found). */
async function seedKeyOf(config: RunConfig): Promise<string> {
  const pool = getPool();
  const set = await loadPairSet(pool, config, '', 0);
  return seedAdapterKey(await resolveBaseModel(config.lora.baseModel), set, config);
}

export async function resolveSide(spec: string, config: RunConfig, served: readonly string[]): Promise<ResolvedSide> {
  if (spec === 'base') return { label: 'base', model: config.llm.model };
  const cached = cachedSeedAdapters();
  const key = spec === 'seed' ? await seedKeyOf(config) : cached.has(spec) ? spec : undefined;
  if (key !== undefined) {
    const dir = cached.get(key);
    if (!dir) throw new Error(`no seed adapter is cached for preset ${config.preset} (key ${key}): build it with \`archloop seed-adapter --preset ${config.preset}\``);
    return { label: spec === 'seed' ? `seed adapter ${key}` : spec, model: await serveAdapterDir(config, dir, 'compare'), seedKey: key };
  }
  if (served.includes(spec)) return { label: spec, model: spec };
  if (spec.includes(path.sep) || spec.startsWith('.')) return { label: spec, model: await serveAdapterDir(config, spec, 'compare') };
  throw new Error(
    `no adapter "${spec}". The endpoint serves: ${served.join(', ') || 'nothing'}; cached seed adapters: ${[...cached.keys()].join(', ') || 'none'}; ` +
      'or give base, seed, or a PEFT adapter directory',
  );
}


function pairedLine(name: string, outcome: PairedOutcome): string {
  return (
    `${name.padEnd(22)} A ${formatRate(outcome.a).padEnd(28)} B ${formatRate(outcome.b).padEnd(28)} ` +
    `B only ${outcome.bOnly}, A only ${outcome.aOnly}: exact McNemar ${formatPValue(outcome.pValue)} → B is ${outcome.verdict}`
  );
}

export function describeComparison(c: Comparison): string {
  const lines = [
    `A = ${c.a.label} (${c.a.model}); B = ${c.b.label} (${c.b.model})`,
    `${c.samples} paired samples (same prompts, seeds ${c.seed}…${c.seed + c.samples - 1}), preset ${c.preset}, template ${c.template}${c.repair ? ', one repair per failure' : ''}; 95 % Wilson intervals`,
    pairedLine('valid, first attempt', c.firstAttempt),
    pairedLine('valid after repair', c.afterRepair),
    pairedLine('novel and valid', c.novelValid),
    `first failures          A: ${formatCounts(c.a.failureClasses)}`,
    `                        B: ${formatCounts(c.b.failureClasses)}`,
    `still failing           A: ${formatCounts(c.a.failureClassesAfterRepair)}`,
    `                        B: ${formatCounts(c.b.failureClassesAfterRepair)}`,
  ];
  if (c.dominantFailure) lines.push(`dominant failure (A's): ${c.dominantFailure.failureClass} ${c.dominantFailure.a} → ${c.dominantFailure.b}`);
  lines.push(`(at least ${minDiscordantForSignificance()} discordant pairs, all one way, are needed for p < 0.05)`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('compare <a> <b>')
    .description('sample two models (base, seed, an adapter) on the same prompts and seeds, validate and repair, and compare them with a paired test')
    .option('--preset <name>', 'demo | paper', 'demo')
    .option('--config <file.json>', 'JSON overrides merged over the preset')
    .option('--samples <n>', 'paired samples per side', positiveInt, 32)
    .option('--batch <n>', 'choices per request (default: sampling.samplesPerActivity)', positiveInt)
    .option('--seed <n>', 'first sampling seed (default: a range no training data is sampled from)', positiveInt)
    .option('--json', 'print one JSON object')
    .option('--out <file.json>', 'also write the comparison here')
    .action(async (a: string, b: string, options: { preset: string; config?: string; samples: number; batch?: number; seed?: number; json?: boolean; out?: string }) => {
      const config = readCliConfig(options.preset, options.config);
      const pool = getPool();
      await checkSeeds(pool, config);
      const client = llmClientFromConfig(config);
      const served = await client.listModels();
      const sideA = await resolveSide(a, config, served);
      const sideB = await resolveSide(b, config, served);
      const batch = options.batch ?? config.sampling.samplesPerActivity;
      const prompts = await batchPrompts(pool, config, 'compare', options.samples, batch);
      const log = options.json ? undefined : (line: string) => console.error(line);
      const comparison = await compareModels(config, sideA, sideB, { a: client, b: client }, {
        samples: options.samples,
        batch,
        seed: options.seed ?? COMPARE_SEED,
        promptFor: (first) => prompts.get(first)!,
        corpus: await teachingSeedPrograms(pool, profileOf(config)),
        log,
      });
      if (options.out) writeFileSync(options.out, `${JSON.stringify(comparison, null, 2)}\n`);
      if (a === 'base' && sideB.seedKey && attachComparison(sideB.seedKey, comparison) && !options.json) {
        console.error(`kept beside the seed adapter ${sideB.seedKey}: runs that use it show this comparison`);
      }
      console.log(options.json ? JSON.stringify(comparison) : describeComparison(comparison));
    });
}
