/**
 * What a report reads from Postgres, through the table modules in src/db. Shaping the rows
 * into tables and charts happens in the pure modules next to this one.
 */
import { RunConfig } from '../core/config';
import { profileOf } from '../corpus/checks';
import { outcomeRows, topArchitectures, type ArchitectureRow, type OutcomeRow } from '../db/candidates';
import type { Queryable } from '../db/pool';
import { cycleRows, runRow, type CycleRow, type RunRow } from '../db/runs';

export interface ReportData {
  run: RunRow;
  cycles: CycleRow[];
  outcomes: OutcomeRow[];
  top: ArchitectureRow[];
}

export class UnknownRunError extends Error {
  override name = 'UnknownRunError';
}

/** The run's seed-check profile; a report still renders a run whose stored config no longer parses. */
function profileOrNull(config: unknown): string | null {
  const parsed = RunConfig.safeParse(config);
  return parsed.success ? profileOf(parsed.data) : null;
}

export async function loadReportData(db: Queryable, runId: string, topCount: number): Promise<ReportData> {
  const run = await runRow(db, runId);
  if (!run) throw new UnknownRunError(`unknown run ${runId}`);
  return {
    run,
    cycles: await cycleRows(db, runId, profileOrNull(run.config)),
    outcomes: await outcomeRows(db, runId),
    top: await topArchitectures(db, runId, topCount),
  };
}
