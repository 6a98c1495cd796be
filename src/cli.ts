/**
 * `archloop`: the command line. Each command group lives in src/cli/<group>.ts; this file
 * only wires them and turns any error into one clear line and a non-zero exit.
 */
// First: `archloop validate|train` boots its sandbox while the rest of the CLI loads.
import './sandbox/prestart';
import { Command, CommanderError } from 'commander';
import { ZodError } from 'zod';
import { ConfigError, formatIssues } from './core/config';
import { closePool } from './db/pool';
import { register as registerCompare } from './cli/compare';
import { register as registerCorpus } from './cli/corpus';
import { register as registerNovelty } from './cli/novelty';
import { register as registerPreflight } from './cli/preflight';
import { register as registerSeedAdapter } from './cli/seed-adapter';
import { register as registerReport } from './cli/report';
import { register as registerRun } from './cli/run';
import { register as registerServices } from './cli/services';
import { register as registerValidate } from './cli/validate';
import { register as registerWatch } from './cli/watch';
import { register as registerWorker } from './cli/worker';

export function buildProgram(): Command {
  const program = new Command('archloop')
    .description('a durable closed loop in which a code LLM designs neural networks')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of [registerServices, registerRun, registerWatch, registerWorker, registerReport, registerNovelty, registerCorpus, registerValidate, registerPreflight, registerCompare, registerSeedAdapter]) register(program);
  return program;
}

export function errorLine(error: unknown): string {
  if (error instanceof ZodError) return `invalid input: ${formatIssues(error).join('; ')}`;
  if (error instanceof ConfigError) return error.message; // one line per bad field
  if (error instanceof Error) return error.message.split('\n')[0] ?? String(error);
  return String(error);
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    // commander has already printed its own message (usage errors, --help, --version).
    if (error instanceof CommanderError) return error.exitCode;
    console.error(`archloop: ${errorLine(error)}`);
    if (process.env.ARCHLOOP_DEBUG) console.error(error);
    return 1;
  } finally {
    await closePool().catch(() => undefined);
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}
