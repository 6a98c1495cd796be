/**
 * `archloop validate|train …`: starts the sandbox server and its first zygote (the torch
 * import, seconds of CPU) while the rest of the command line is still loading, so the
 * two overlap. Imported first by src/cli.ts, for this effect alone; other commands, --help
 * and unsafe mode do not start anything.
 */
import { settingsFromEnv } from './request';
import { onDemandSizing, configureSandboxPool, sandboxPool } from './runner';

const SKIP = new Set(['--help', '-h', '--unsafe-no-sandbox']);

export function prestart(argv: readonly string[]): boolean {
  const [, , command, ...rest] = argv;
  if ((command !== 'validate' && command !== 'train') || rest.some((arg) => SKIP.has(arg))) return false;
  try {
    configureSandboxPool(onDemandSizing());
    sandboxPool().prewarm(command, settingsFromEnv());
    return true;
  } catch {
    return false; // the command itself reports what is wrong
  }
}

prestart(process.argv);
