/** `archloop report <runId> --out <dir>`: writes the run's HTML report, figures and table. */
import path from 'node:path';
import type { Command } from 'commander';
import { closePool, getPool } from '../db/pool';
import { stateDir } from '../env';
import { safeStem } from '../report/format';
import { buildReport } from '../report';
import { positiveInt } from './parse';

export function defaultReportDir(runId: string): string {
  return path.join(stateDir(), 'reports', safeStem(runId));
}

export function register(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report of a run (figures as SVG/PNG, table as CSV/JSON)')
    .argument('<runId>', 'run (workflow) id')
    .option('-o, --out <dir>', 'output directory (default: $ARCHLOOP_HOME/reports/<runId>)')
    .option('--top <n>', 'how many top architectures to show', positiveInt, 8)
    .action(async (runId: string, options: { out?: string; top: number }) => {
      const outDir = options.out ?? defaultReportDir(runId);
      try {
        const result = await buildReport(getPool(), runId, outDir, { top: options.top });
        console.log(`report: ${result.indexPath} (${result.files.length} files)`);
      } finally {
        await closePool();
      }
    });
}
