/** The run report: `buildReport(pool, runId, outDir)` and what it is made of. */
export { buildReport, type ReportOptions, type ReportResult } from './build';
export { UnknownRunError } from './load';
export type { CycleTableRow } from '../core/paper-table';
export type { RunSummary } from './table';
