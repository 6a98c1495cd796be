/**
 * `archloop novelty <a.py> <b.py> [...] [--dataset NAME]`: pairwise estimated (MinHash) and
 * exact Jaccard of the programs' normalized shingles under a novelty config, and with
 * --dataset each program's graph-IR structural hash from the sandbox runner.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { DatasetName, NoveltyConfig } from '../core/config';
import { fingerprint, pairwiseSimilarities, signatureKey, type NoveltySettings } from '../core/novelty';
import type { ValidationRow } from '../db/candidates';
import { closeSandboxPools, configureSandboxPool, onDemandSizing } from '../sandbox/runner';
import { runFiles } from './validate';
import { positiveInt } from './parse';

interface NoveltyOptions {
  shingleSize?: number;
  numPerm?: number;
  threshold?: number;
  raw?: boolean;
  dataset?: string;
  datasetPath?: string;
  unsafeNoSandbox?: boolean;
}

function unitInterval(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number in [0, 1]');
  return n;
}

export function settingsOf(options: NoveltyOptions): NoveltySettings {
  return NoveltyConfig.parse({
    shingleSize: options.shingleSize,
    numPerm: options.numPerm,
    threshold: options.threshold,
    ...(options.raw ? { normalizeIdentifiers: false, normalizeNumbers: false, normalizeStrings: false } : {}),
  });
}

/** Each program's structural hash, validated through the same warm sandbox path as `archloop validate`. */
async function structuralHashes(files: readonly string[], options: NoveltyOptions): Promise<string[]> {
  configureSandboxPool(onDemandSizing(files.length));
  try {
    const cli = { dataset: DatasetName.parse(options.dataset), datasetPath: options.datasetPath, preset: 'paper', unsafeNoSandbox: options.unsafeNoSandbox };
    const results = await runFiles('validate', [...files], cli, () => undefined);
    return results.map((result) => {
      if ('error' in result) return `error: ${result.error}`;
      const row = result.row as ValidationRow;
      if (row.structuralHash) return row.structuralHash;
      return row.failureClass ? `invalid (${row.failureClass}): ${(row.failureMessage ?? '').split('\n')[0]}` : 'no graph';
    });
  } finally {
    await closeSandboxPools();
  }
}

const fixed = (value: number) => value.toFixed(4);

export async function noveltyReport(files: readonly string[], options: NoveltyOptions): Promise<string> {
  const settings = settingsOf(options);
  const programs = await Promise.all(
    files.map(async (file) => ({ name: file, fingerprint: fingerprint(await readFile(file, 'utf8'), settings) })),
  );
  const width = Math.max(...files.map((file) => file.length));
  const lines = [`signatures: ${signatureKey(settings)}; near-duplicate at estimated Jaccard >= ${settings.threshold}`, ''];
  for (const { name, fingerprint: print } of programs) {
    lines.push(`${name.padEnd(width)}  ${String(print.tokens).padStart(6)} tokens  ${String(print.shingles.size).padStart(6)} shingles`);
  }
  lines.push('', `${'a'.padEnd(width)}  ${'b'.padEnd(width)}  estimated  exact`);
  for (const pair of pairwiseSimilarities(programs)) {
    const flag = pair.estimated >= settings.threshold ? '  near-duplicate' : '';
    lines.push(`${pair.a.padEnd(width)}  ${pair.b.padEnd(width)}  ${fixed(pair.estimated).padStart(9)}  ${fixed(pair.exact)}${flag}`);
  }
  if (options.dataset) {
    lines.push('', `structural hash (graph IR on ${options.dataset}):`);
    const hashes = await structuralHashes(files, options);
    files.forEach((file, i) => lines.push(`${file.padEnd(width)}  ${hashes[i]}`));
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('novelty')
    .description('pairwise MinHash-estimated and exact Jaccard of programs (normalized shingles); structural hashes with --dataset')
    .argument('<files...>', 'two or more Python programs')
    .option('--shingle-size <k>', 'tokens per shingle (default 7)', positiveInt)
    .option('--num-perm <n>', 'MinHash permutations (default 128)', positiveInt)
    .option('--threshold <t>', 'near-duplicate threshold (default 0.85)', unitInterval)
    .option('--raw', 'do not normalize identifiers, numbers and strings')
    .option('--dataset <name>', 'also print each program’s structural hash, validated on this dataset (cifar10, fashion-mnist, synthetic)')
    .option('--dataset-path <dir>', 'dataset directory for --dataset')
    .option('--unsafe-no-sandbox', 'validate WITHOUT bubblewrap (needs ARCHLOOP_ALLOW_UNSAFE=1; never on a shared machine)')
    .action(async (files: string[], options: NoveltyOptions) => {
      if (files.length < 2) throw new InvalidArgumentError('give at least two programs');
      if (options.dataset) DatasetName.parse(options.dataset);
      console.log(await noveltyReport(files, options));
    });
}
