/**
 * `archloop novelty <a.py> <b.py> [...] [--dataset NAME]`: pairwise estimated (MinHash) and
 * exact Jaccard of the programs' normalized shingles under a novelty config, and with
 * --dataset each program's graph-IR structural hash from the sandbox runner.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { DatasetName, NoveltyConfig } from '../core/config';
import { fingerprint, pairwiseSimilarities, signatureKey, type NoveltySettings } from '../core/novelty';
import { PYTHON_SRC, pythonBin, REPO_ROOT } from '../env';

interface NoveltyOptions {
  shingleSize?: number;
  numPerm?: number;
  threshold?: number;
  raw?: boolean;
  dataset?: string;
  datasetPath?: string;
  unsafeNoSandbox?: boolean;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
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

const RunnerLine = z.union([
  z.object({
    event: z.literal('result'),
    result: z.object({
      ok: z.boolean(),
      structuralHash: z.string().nullable().optional(),
      failure: z.object({ class: z.string(), message: z.string() }).nullable(),
    }),
  }),
  z.object({ event: z.literal('error'), message: z.string() }),
  z.object({ event: z.string() }),
]);

/**
 * Structural hash of one program from `python -m archloop.runner validate`.
 * TODO(sandbox client): switch to the TS client in src/sandbox once it exists.
 */
async function structuralHash(file: string, options: NoveltyOptions): Promise<string> {
  const args = ['-m', 'archloop.runner', 'validate', '--code', file, '--dataset', DatasetName.parse(options.dataset)];
  if (options.datasetPath) args.push('--dataset-path', options.datasetPath);
  if (options.unsafeNoSandbox) args.push('--unsafe-no-sandbox');
  const child = spawn(pythonBin(), args, {
    cwd: REPO_ROOT,
    env: { ...process.env, PYTHONPATH: [PYTHON_SRC, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', () => resolve());
  });
  for (const line of stdout.split('\n').filter(Boolean)) {
    const event = RunnerLine.parse(JSON.parse(line));
    if ('message' in event && event.event === 'error') return `error: ${event.message}`;
    if ('result' in event) {
      const { result } = event;
      if (result.structuralHash) return result.structuralHash;
      return result.failure ? `invalid (${result.failure.class}): ${result.failure.message.split('\n')[0]}` : 'no graph';
    }
  }
  return 'error: the runner returned no result';
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
    for (const file of files) lines.push(`${file.padEnd(width)}  ${await structuralHash(file, options)}`);
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
    .option('--unsafe-no-sandbox', 'validate without bubblewrap (never on a shared machine)')
    .action(async (files: string[], options: NoveltyOptions) => {
      if (files.length < 2) throw new InvalidArgumentError('give at least two programs');
      if (options.dataset) DatasetName.parse(options.dataset);
      console.log(await noveltyReport(files, options));
    });
}
