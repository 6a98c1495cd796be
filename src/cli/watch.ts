/** `archloop watch <runId>`: live progress of a run (also one started from the Temporal CLI). */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { connectClient, runUiUrl } from '../client/temporal';
import { renderWatch, type WatchSnapshot } from '../client/watch-view';
import { getPool } from '../db/pool';
import { formatLearning, learningComparison } from '../core/learning';
import { formatPaperTable } from '../core/paper-table';
import { loadLearningInput } from '../db/learning';
import { runAdapters } from '../db/adapters';
import { formatFineTunes } from '../core/fine-tunes';
import { loopCycleSeconds } from '../db/runs';
import { cycleProgressQuery, cycleWorkflowId, progressQuery } from '../workflows/definitions';

async function snapshot(client: Client, runId: string): Promise<WatchSnapshot> {
  const handle = client.workflow.getHandle(runId);
  const description = await handle.describe().catch(() => {
    throw new Error(`no run with id ${runId}`);
  });
  const running = description.status.name === 'RUNNING';
  const progress = running ? await handle.query(progressQuery).catch(() => null) : null;
  const cycle =
    progress?.currentCycle != null
      ? await client.workflow
          .getHandle(cycleWorkflowId(runId, progress.currentCycle))
          .query(cycleProgressQuery)
          .catch(() => null)
      : null;
  const pool = getPool();
  const learning = await loadLearningInput(pool, runId);
  return {
    runId,
    workflowStatus: description.status.name,
    progress,
    cycle,
    table: [formatPaperTable([...learning.cycles]), formatLearning(learningComparison(learning)), formatFineTunes(await runAdapters(pool, runId))].filter(Boolean).join('\n\n'),
    cycleSeconds: await loopCycleSeconds(pool, runId),
    uiUrl: runUiUrl(runId),
  };
}

/** Redraws until the run closes; returns its final Temporal status. */
export async function watchRun(runId: string, intervalMs = 2000): Promise<string> {
  const client = await connectClient();
  const tty = process.stdout.isTTY;
  let last = '';
  for (;;) {
    const snap = await snapshot(client, runId);
    const view = renderWatch(snap);
    if (view !== last) {
      // On a terminal, redraw in place; in a log, print each change once.
      process.stdout.write(tty ? `\x1b[2J\x1b[H${view}\n` : `${view}\n\n`);
      last = view;
    }
    if (snap.workflowStatus !== 'RUNNING') return snap.workflowStatus;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function register(program: Command): void {
  program
    .command('watch <runId>')
    .description('live progress of a run: stage bars for the current cycle, finished cycles, ETA')
    .option('--interval <seconds>', 'refresh interval', '2')
    .action(async (runId: string, opts: { interval: string }) => {
      const status = await watchRun(runId, Number(opts.interval) * 1000);
      console.log(`run ${status.toLowerCase()}; report: archloop report ${runId}`);
      if (status !== 'COMPLETED') process.exitCode = 1;
    });
}
