/**
 * `archloop seed-adapter --preset demo`: trains the seed adapter (the fine-tune of cycle 0)
 * into the per-machine cache ahead of a run, or finds it there (src/llm/seed-adapter.ts).
 * Resumable: run it again after an interruption and it continues from its last checkpoint.
 */
import type { Command } from 'commander';
import { checkSeeds } from '../corpus/check-seeds';
import { describeSummary } from '../corpus/checks';
import { closePool, getPool } from '../db/pool';
import { resolveBaseModel } from '../llm/artifacts';
import { loadPairSet } from '../llm/finetune-pairs';
import { seedAdapter } from '../llm/seed-adapter';
import { readCliConfig } from './config-file';

export function register(program: Command): void {
  program
    .command('seed-adapter')
    .description("train the seed fine-tune's adapter once into the machine's cache (resumable), for runs with the same model, seed corpus and LoRA settings")
    .option('--preset <name>', 'demo | paper', 'demo')
    .option('--config <file.json>', 'JSON overrides of the preset')
    .action(async (options: { preset: string; config?: string }) => {
      try {
        const config = readCliConfig(options.preset, options.config);
        const pool = getPool();
        console.error(describeSummary(await checkSeeds(pool, config)));
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
