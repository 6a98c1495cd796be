/** `archloop corpus import-lemur [--limit N] [--wheel PATH]`: seeds the corpus from LEMUR. */
import type { Command } from 'commander';
import { checkSeeds } from '../corpus/check-seeds';
import { describeSummary } from '../corpus/checks';
import { importLemur } from '../corpus/lemur';
import { ensureLemurWheel, LEMUR_VERSION } from '../corpus/wheel-fetch';
import { closePool, getPool } from '../db/pool';
import { readCliConfig } from './config-file';
import { positiveInt } from './parse';

/** Validates the seed entries not yet checked at a preset's shape and budget, with progress. */
async function checkAt(preset: string, configFile: string | undefined): Promise<void> {
  const config = readCliConfig(preset, configFile);
  let last = 0;
  const summary = await checkSeeds(getPool(), config, {
    onProgress: (done, total, name) => {
      if (done === total || Date.now() - last > 5000) {
        last = Date.now();
        console.error(`checked ${done}/${total} seed entries at the ${preset} shape (last: ${name ?? '?'})`);
      }
    },
  });
  console.log(describeSummary(summary));
  if (summary.kept === 0) process.exitCode = 1;
}

export function register(program: Command): void {
  const corpus = program.command('corpus').description('the seed corpus of architectures');
  corpus
    .command('import-lemur')
    .description(`import LEMUR architectures and their CIFAR-10 accuracies (nn-dataset==${LEMUR_VERSION}) as seed entries; idempotent`)
    .option('--limit <n>', 'import at most N architectures (first by name)', positiveInt)
    .option('--max-chars <n>', 'skip programs longer than N characters', positiveInt)
    .option('--wheel <path>', 'use this nn-dataset wheel instead of downloading the pinned one with pip')
    .option('--check <preset>', 'then validate the new entries at this preset\'s input shape and budget')
    .option('--config <file.json>', 'with --check: JSON overrides of the preset')
    .action(async (options: { limit?: number; maxChars?: number; wheel?: string; check?: string; config?: string }) => {
      const log = (line: string) => console.error(line);
      try {
        const wheel = options.wheel ?? (await ensureLemurWheel(undefined, log));
        const summary = await importLemur(getPool(), { wheel, limit: options.limit, maxChars: options.maxChars, log });
        const licences = Object.entries(summary.licences).map(([licence, n]) => `${licence} ${n}`).join(', ');
        console.log(
          `LEMUR ${summary.version ?? '?'}: ${summary.considered} of ${summary.available} architectures read; ` +
            `${summary.inserted} inserted, ${summary.updated} updated, ${summary.unchanged} unchanged` +
            (licences ? ` (licences: ${licences})` : ''),
        );
        const { notContract, noTrials, badStats, tooLong } = summary.skipped;
        if (notContract + noTrials + badStats + tooLong > 0) {
          console.log(
            `skipped: ${noTrials} without any CIFAR-10 trial, ${notContract} not following the model contract, ` +
              `${badStats} with unreadable statistics, ${tooLong} longer than --max-chars`,
          );
        }
        if (options.check) await checkAt(options.check, options.config);
      } finally {
        await closePool();
      }
    });

  corpus
    .command('check')
    .description("validate the seed entries at a preset's input shape and budget (once per entry and shape); only those that pass teach")
    .option('--preset <name>', 'demo | paper', 'demo')
    .option('--config <file.json>', 'JSON overrides of the preset')
    .action(async (options: { preset: string; config?: string }) => {
      try {
        await checkAt(options.preset, options.config);
      } finally {
        await closePool();
      }
    });
}
