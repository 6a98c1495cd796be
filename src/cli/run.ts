/** `archloop run`, `status`, `runs`, and the steering commands (pause, resume, stop, cycles). */
import type { SignalDefinition } from '@temporalio/common';
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { connectClient, newRunId, runProgress, runUiUrl, RunIdTakenError, startRun } from '../client/temporal';
import { NotConfiguredError, databaseUrl } from '../env';
import { getPool } from '../db/pool';
import { formatLearning, learningComparison } from '../core/learning';
import { loadLearningInput } from '../db/learning';
import { runAdapters } from '../db/adapters';
import { formatFineTunes } from '../core/fine-tunes';
import { loadRunConfig, runStatus } from '../db/runs';
import { formatPaperTable } from '../core/paper-table';
import {
  pauseSignal,
  resumeSignal,
  setRemainingCyclesUpdate,
  stopAfterCycleSignal,
} from '../workflows/definitions';
import { readCliConfig } from './config-file';
import { watchRun } from './watch';

export function register(program: Command): void {
  program
    .command('run')
    .description('start a design run (prints its id and the Temporal UI link)')
    .option('--preset <name>', 'demo | paper', 'demo')
    .option('--config <file.json>', 'JSON overrides merged over the preset')
    .option('--cycles <n>', 'number of cycles (overrides the config)')
    .option('--id <runId>', 'workflow id of a new run (default: run-<time>-<random>); an id in use is refused')
    .option('--watch', 'follow the run until it ends')
    .option('--resume <runId>', 'follow an existing run; one that failed or was terminated starts again with its stored config')
    .action(async (opts: { preset: string; config?: string; cycles?: string; id?: string; watch?: boolean; resume?: string }) => {
      let runId = opts.resume;
      if (runId) {
        if (opts.config || opts.cycles || opts.id) throw new Error('--resume keeps the run’s stored config and id: drop --config, --cycles and --id');
        await resumeRun(await connectClient(), runId);
      } else {
        const config = readCliConfig(opts.preset, opts.config, opts.cycles);
        runId = opts.id ?? newRunId();
        await refuseStoredRunId(runId);
        await startRun(await connectClient(), config, runId);
        console.log(`started ${runId}`);
        console.log(`Temporal UI: ${runUiUrl(runId)}`);
        if (!opts.watch) return void console.log(`follow it:   archloop watch ${runId}`);
      }
      const status = await watchRun(runId);
      console.log(`run ${status.toLowerCase()}; report: archloop report ${runId}`);
      if (status !== 'COMPLETED') process.exitCode = 1;
    });

  program
    .command('status <runId>')
    .description("a run's state and its per-cycle table (the paper's layout)")
    .action(async (runId: string) => {
      const client = await connectClient();
      const description = await client.workflow
        .getHandle(runId)
        .describe()
        .catch(() => {
          throw new Error(`no run with id ${runId}`);
        });
      console.log(`run ${runId}: ${description.status.name}  (${runUiUrl(runId)})`);
      if (description.status.name === 'RUNNING') {
        const progress = await runProgress(client, runId);
        const current = progress.currentCycle === null ? 'between cycles' : `cycle ${progress.currentCycle}`;
        console.log(`${progress.status}, ${current} of ${progress.totalCycles}, sampling from ${progress.model}`);
      }
      const learning = await loadLearningInput(getPool(), runId);
      console.log(formatPaperTable([...learning.cycles]));
      console.log(`\n${formatLearning(learningComparison(learning))}`);
      const fineTunes = formatFineTunes(await runAdapters(getPool(), runId));
      if (fineTunes) console.log(`\n${fineTunes}`);
    });

  program
    .command('runs')
    .description('list runs, newest first')
    .option('--limit <n>', 'how many', '20')
    .action(async (opts: { limit: string }) => {
      const client = await connectClient();
      let shown = 0;
      for await (const run of client.workflow.list({ query: "WorkflowType = 'designRun'" })) {
        console.log(`${run.workflowId.padEnd(34)} ${run.status.name.padEnd(11)} ${run.startTime.toISOString()}`);
        if (++shown >= Number(opts.limit)) break;
      }
      if (shown === 0) console.log('no runs yet: start one with `archloop run --preset demo`');
    });

  const signal = (name: string, description: string, def: SignalDefinition<[], string>) =>
    program
      .command(`${name} <runId>`)
      .description(description)
      .action(async (runId: string) => {
        const client = await connectClient();
        await client.workflow.getHandle(runId).signal(def);
        console.log(`${name}: sent to ${runId}`);
      });
  signal('pause', 'pause a run before its next cycle', pauseSignal);
  signal('resume', 'resume a paused run', resumeSignal);
  signal('stop', 'finish the cycle in progress, then end the run', stopAfterCycleSignal);

  program
    .command('cycles <runId> <remaining>')
    .description('set how many cycles remain after the one in progress')
    .action(async (runId: string, remaining: string) => {
      const n = Number(remaining);
      if (!Number.isInteger(n) || n < 0) throw new Error(`remaining must be a non-negative integer, got "${remaining}"`);
      const client = await connectClient();
      const total = await client.workflow.getHandle(runId).executeUpdate(setRemainingCyclesUpdate, { args: [n] });
      console.log(`${runId}: now ${total} cycles in all`);
    });
}

/** The runs table outlives Temporal's retention: an id it holds is taken even when Temporal has forgotten it. */
async function storedRunStatus(runId: string): Promise<string | undefined> {
  try {
    databaseUrl();
  } catch (error) {
    if (error instanceof NotConfiguredError) return undefined; // no database here: the workers' startRun checks it
    throw error;
  }
  return runStatus(getPool(), runId).catch((error: Error) => {
    throw new Error(`cannot look run id ${runId} up in the database (${error.message}): run \`archloop services up\` or check DATABASE_URL`);
  });
}

async function refuseStoredRunId(runId: string): Promise<void> {
  const status = await storedRunStatus(runId);
  if (status !== undefined) {
    throw new RunIdTakenError(`run id ${runId} is taken (a ${status} run in the database): \`archloop run --resume ${runId}\` continues it; pick another --id for a new run`);
  }
}

/**
 * `run --resume X`: a running or finished run is only followed; one whose last execution
 * failed, was terminated, cancelled or timed out (or that Temporal no longer knows) starts
 * again under the same id with its stored config, and every stage picks up what is stored.
 */
async function resumeRun(client: Client, runId: string): Promise<void> {
  const temporalStatus = await client.workflow
    .getHandle(runId)
    .describe()
    .then((d) => d.status.name)
    .catch(() => undefined);
  if (temporalStatus === 'RUNNING' || temporalStatus === 'COMPLETED' || temporalStatus === 'CONTINUED_AS_NEW') return;
  const stored = await storedRunStatus(runId);
  if (stored === undefined) {
    if (temporalStatus) throw new Error(`run ${runId} is ${temporalStatus.toLowerCase()} and not in the database: it cannot be resumed`);
    throw new Error(`no run with id ${runId}`);
  }
  if (stored === 'completed' || stored === 'stopped') throw new Error(`run ${runId} is ${stored}: nothing to resume`);
  await startRun(client, await loadRunConfig(getPool(), runId), runId, { resume: true });
  console.log(`resumed ${runId} (${temporalStatus ? `its last execution ${temporalStatus.toLowerCase()}` : 'Temporal no longer knew it'})`);
}
