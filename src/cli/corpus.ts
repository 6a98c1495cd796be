/** `archloop corpus import-lemur [--limit N] [--wheel PATH]`: seeds the corpus from LEMUR. */
import { InvalidArgumentError, type Command } from 'commander';
import { importLemur } from '../corpus/lemur';
import { ensureLemurWheel, LEMUR_VERSION } from '../corpus/wheel-fetch';
import { closePool, getPool } from '../db/pool';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function register(program: Command): void {
  const corpus = program.command('corpus').description('the seed corpus of architectures');
  corpus
    .command('import-lemur')
    .description(`import LEMUR architectures and their CIFAR-10 accuracies (nn-dataset==${LEMUR_VERSION}) as seed entries; idempotent`)
    .option('--limit <n>', 'import at most N architectures (first by name)', positiveInt)
    .option('--max-chars <n>', 'skip programs longer than N characters', positiveInt)
    .option('--wheel <path>', 'use this nn-dataset wheel instead of downloading the pinned one with pip')
    .action(async (options: { limit?: number; maxChars?: number; wheel?: string }) => {
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
      } finally {
        await closePool();
      }
    });
}
