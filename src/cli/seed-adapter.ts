/**
 * `archloop seed-adapter --preset demo`: trains the seed adapter (the fine-tune of cycle 0)
 * into the per-machine cache ahead of a run, or finds it there (src/llm/seed-adapter.ts).
 * Resumable: run it again after an interruption and it continues from its last checkpoint.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { mergeJson, parseConfig } from '../core/config';
import { checkSeeds } from '../corpus/check-seeds';
import { describeSummary } from '../corpus/checks';
import { closePool, getPool } from '../db/pool';
import { resolveBaseModel } from '../llm/artifacts';
import { loadPairSet } from '../llm/finetune-pairs';
import { llmClientFromConfig } from '../llm/from-config';
import { buildSelfSeed } from '../llm/self-seed';
import { seedAdapter } from '../llm/seed-adapter';
import { readCliConfig } from './config-file';

export function register(program: Command): void {
  program
    .command('seed-adapter')
    .description("train the seed fine-tune's adapter once into the machine's cache (resumable), for runs with the same model, seed corpus and LoRA settings")
    .option('--preset <name>', 'demo | paper', 'demo')
    .option('--config <file.json>', 'JSON overrides of the preset')
    .option('--from <source>', "lemur (LEMUR's programs), self (the base model's own valid programs, sampled once and cached) or both; default: the config's lora.seedFrom", (value: string) => {
      if (!['lemur', 'self', 'both'].includes(value)) throw new InvalidArgumentError('expected lemur, self or both');
      return value;
    })
    .action(async (options: { preset: string; config?: string; from?: string }) => {
      try {
        let config = readCliConfig(options.preset, options.config);
        if (options.from) config = parseConfig(mergeJson(config, { lora: { seedFrom: options.from } }));
        const pool = getPool();
        console.error(describeSummary(await checkSeeds(pool, config)));
        if (config.lora.seedFrom !== 'lemur') {
          const started = Date.now();
          console.error(`sampling the base model's own programs: ${config.lora.selfSamples} with ${config.llm.model} (resumable; cached once sampled)`);
          const self = await buildSelfSeed(pool, config, llmClientFromConfig(config), (line) => console.error(line));
          console.error(
            `self-seed set ${self.key}: ${self.validFirst}/${self.sampled} valid at the first attempt, ${self.validAfterRepair} after repair; ` +
              `${self.pairs.length} pairs (${self.duplicates} structural duplicates, ${self.noFit} not fitting the header dropped), ${((Date.now() - started) / 1000).toFixed(0)} s`,
          );
        }
        const set = await loadPairSet(pool, config, '', 0);
        if (set.pairs.length === 0) throw new Error('no seed entry is valid at this shape: import more with `archloop corpus import-lemur`');
        console.error(`preparing the base model ${config.lora.baseModel} (converted once per machine)`);
        const baseModel = await resolveBaseModel(config.lora.baseModel);
        const started = Date.now();
        let lastPrint = 0;
        const seed = await seedAdapter(config, baseModel, set, {
          onProgress: (p) => {
            if (Date.now() - lastPrint < 10_000 && p.step !== p.totalSteps) return;
            lastPrint = Date.now();
            const elapsed = (Date.now() - started) / 1000;
            console.error(`step ${p.step}/${p.totalSteps}, loss ${p.loss?.toFixed(4) ?? '—'}, ${elapsed.toFixed(0)} s`);
          },
        });
        const seconds = ((Date.now() - started) / 1000).toFixed(0);
        console.log(
          seed.cached
            ? `seed adapter ${seed.key} is cached: ${seed.adapterDir}`
            : `seed adapter ${seed.key}: ${seed.done.steps} steps on ${set.pairs.length} pairs in ${seconds} s, final loss ${seed.done.finalLoss?.toFixed(4) ?? '—'}: ${seed.adapterDir}`,
        );
      } finally {
        await closePool();
      }
    });
}
