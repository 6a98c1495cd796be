/**
 * `archloop validate <file.py>…` and `archloop train <file.py>…`: programs through the warm
 * sandbox pool, printing (with --json) exactly the row values the activities store. One
 * file prints as it always did; several go to the pool at once and print one compact JSON
 * object per line (JSON Lines, with the file first), in input order.
 * Exit status 0 whenever every program got a result, passed or a classified failure (the
 * printed status and failureClass say which); 1 when archloop itself failed (for several
 * files, after the others have printed; that file's line then holds `error`).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DatasetName, type RunConfig } from '../core/config';
import type { ProgressEvent, SandboxKind } from '../core/sandbox';
import { assertUnsafeAllowed, buildRequest, settingsFromEnv } from '../sandbox/request';
import type { TrainingRow, ValidationRow } from '../db/candidates';
import { trainingRow, validationRow } from '../sandbox/rows';
import { closeSandboxPools, configureSandboxPool, onDemandSizing, runSandbox, type RunOptions } from '../sandbox/runner';
import { readCliConfig } from './config-file';

export interface SandboxCliOptions {
  dataset: string;
  datasetPath?: string;
  preset: string;
  config?: string;
  json?: boolean;
  unsafeNoSandbox?: boolean;
}

/** The config sections the runner needs: a preset (and file), with the dataset from the flags. */
export function configFor(options: SandboxCliOptions): Pick<RunConfig, 'dataset' | 'contract' | 'training'> {
  const config = readCliConfig(options.preset, options.config);
  const name = DatasetName.parse(options.dataset);
  const sameDataset = config.dataset.name === name;
  return {
    dataset: { ...config.dataset, name, path: options.datasetPath ?? (sameDataset ? config.dataset.path : '') },
    contract: config.contract,
    training: config.training,
  };
}

/** Runs one file through the sandbox; returns the row values an activity would store. */
export async function runFile(
  kind: SandboxKind,
  file: string,
  options: SandboxCliOptions,
  runOptions: RunOptions = {},
): Promise<ValidationRow | TrainingRow> {
  const code = readFileSync(file, 'utf8');
  const settings = settingsFromEnv();
  if (options.unsafeNoSandbox) {
    assertUnsafeAllowed();
    settings.mode = 'none';
  }
  const request = buildRequest(kind, code, configFor(options), settings);
  const outcome = await runSandbox(request, runOptions);
  return outcome.kind === 'validate' ? validationRow(outcome) : trainingRow(outcome);
}

export type FileResult = { file: string; row: ValidationRow | TrainingRow } | { file: string; error: string };

/**
 * Runs every file through the pool at once; `onResult` gets them in input order, each as
 * soon as it and all before it are done.
 */
export async function runFiles(
  kind: SandboxKind,
  files: string[],
  options: SandboxCliOptions,
  onResult: (result: FileResult) => void,
  onProgress?: (file: string, event: ProgressEvent) => void,
): Promise<FileResult[]> {
  const settled: Array<FileResult | undefined> = files.map(() => undefined);
  let printed = 0;
  const flush = () => {
    while (printed < files.length && settled[printed]) onResult(settled[printed++]!);
  };
  await Promise.all(
    files.map(async (file, index) => {
      const progress = onProgress ? (event: ProgressEvent) => onProgress(file, event) : undefined;
      try {
        settled[index] = { file, row: await runFile(kind, file, options, { onProgress: progress }) };
      } catch (error) {
        settled[index] = { file, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
      }
      flush();
    }),
  );
  return settled as FileResult[];
}

export const UNSAFE_BANNER = 'UNSAFE: this program ran WITHOUT a sandbox; neither containment nor the accuracy is guaranteed';

function describe(row: ValidationRow | TrainingRow): string {
  const verdict = row.failureClass ? `${row.status} (${row.failureClass}): ${row.failureMessage}` : row.status;
  const timings = 'validation' in row ? row.timings.validate : row.timings.train;
  const lines = row.sandboxMode === 'none' ? [UNSAFE_BANNER, verdict] : [verdict];
  if ('validation' in row) {
    if (row.params !== null) lines.push(`params ${row.params.toLocaleString('en')}, FLOPs/image ${row.flops?.toExponential(3)}`);
    if (row.structuralHash) lines.push(`structural hash ${row.structuralHash.slice(0, 16)}… (${row.graphIr?.method}, ${row.graphIr?.nodes.length} nodes)`);
    for (const warning of row.validation.warnings) lines.push(`warning: ${warning}`);
  } else {
    if (row.accuracy !== null) lines.push(`accuracy ${(row.accuracy * 100).toFixed(2)} % on ${row.training.testSize} test images`);
    lines.push(`device ${row.training.device}, bf16 ${row.training.bf16}, channels_last ${row.training.channelsLast}`);
    if (timings.imagesPerS) lines.push(`${timings.imagesPerS} images/s`);
  }
  lines.push(`total ${timings.totalS?.toFixed(2)} s (sandbox ${timings.sandboxS?.toFixed(2)} s, startup ${timings.startupS?.toFixed(2)} s)`);
  return lines.join('\n');
}

function progressLine(event: ProgressEvent): string {
  const images = event.images !== undefined ? ` ${event.images}/${event.totalImages ?? '?'} images` : '';
  const loss = event.loss !== undefined ? ` loss ${event.loss.toFixed(4)}` : '';
  return `[${event.elapsedS.toFixed(1)}s] ${event.stage}${images}${loss}\n`;
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}
const processIo: CliIo = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

export function register(program: Command, io: CliIo = processIo): void {
  for (const kind of ['validate', 'train'] as const) {
    program
      .command(`${kind} <files...>`)
      .description(
        kind === 'validate'
          ? 'check generated programs in the sandbox (several: one JSON line each with --json)'
          : 'train generated programs for one epoch in the sandbox (several: one JSON line each with --json)',
      )
      .option('--dataset <name>', `dataset (${DatasetName.options.join(', ')})`, 'cifar10')
      .option('--dataset-path <dir>', 'where the dataset files are')
      .option('--preset <name>', 'config preset for the contract/training numbers', 'paper')
      .option('--config <file>', 'JSON overrides of the preset')
      .option('--json', 'print the stored row values as JSON (one compact line per file when there are several)')
      .option('--unsafe-no-sandbox', 'run WITHOUT bubblewrap (rlimits and timeouts only; needs ARCHLOOP_ALLOW_UNSAFE=1)')
      .action(async (files: string[], options: SandboxCliOptions) => {
        configureSandboxPool(onDemandSizing(kind === 'validate' ? files.length : 1));
        try {
          if (files.length === 1) await single(kind, files[0]!, options, io);
          else await several(kind, files, options, io);
        } finally {
          await closeSandboxPools();
        }
      });
  }
}

async function single(kind: SandboxKind, file: string, options: SandboxCliOptions, io: CliIo): Promise<void> {
  const onProgress = options.json ? undefined : (event: ProgressEvent) => io.err(progressLine(event));
  const row = await runFile(kind, file, options, { onProgress });
  if (options.json && row.sandboxMode === 'none') io.err(`${UNSAFE_BANNER}\n`);
  io.out(options.json ? `${JSON.stringify(row, null, 2)}\n` : `${describe(row)}\n`);
}

async function several(kind: SandboxKind, files: string[], options: SandboxCliOptions, io: CliIo): Promise<void> {
  let unsafe = false;
  const onProgress = options.json ? undefined : (file: string, event: ProgressEvent) => io.err(`${file} ${progressLine(event)}`);
  const results = await runFiles(
    kind,
    files,
    options,
    (result) => {
      if ('row' in result && result.row.sandboxMode === 'none' && !unsafe) {
        unsafe = true;
        io.err(`${UNSAFE_BANNER}\n`);
      }
      if (options.json) io.out(`${JSON.stringify('row' in result ? { file: result.file, ...result.row } : result)}\n`);
      else io.out(`== ${result.file}\n${'row' in result ? describe(result.row) : `error: ${result.error}`}\n`);
    },
    onProgress,
  );
  const failed = results.filter((result) => 'error' in result);
  if (failed.length) {
    io.err(`archloop: ${failed.length} of ${files.length} files could not be run (${failed.map((f) => f.file).join(', ')})\n`);
    process.exitCode = 1;
  }
}
