/**
 * What `archloop watch` shows, as a pure function of one snapshot: per-stage progress bars
 * for the current cycle, the table of finished cycles, and an ETA.
 */

import type { CycleProgress, RunProgress } from '../workflows/definitions';

export interface WatchSnapshot {
  runId: string;
  workflowStatus: string;
  progress: RunProgress | null;
  cycle: CycleProgress | null;
  table: string;
  /** Seconds the finished cycles (> 0) took, oldest first. */
  cycleSeconds: number[];
  uiUrl: string;
}

export function bar(done: number, total: number, width = 24): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(4)}/${total}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

/** Remaining time: mean finished-cycle time × cycles left (the current one counted by its share done). */
export function estimateRemaining(snapshot: Pick<WatchSnapshot, 'progress' | 'cycle' | 'cycleSeconds'>): number | null {
  const { progress, cycle, cycleSeconds } = snapshot;
  if (!progress || !cycleSeconds.length) return null;
  const mean = cycleSeconds.reduce((a, b) => a + b, 0) / cycleSeconds.length;
  const current = progress.currentCycle ?? progress.completed.at(-1)?.cycle ?? 0;
  const after = Math.max(0, progress.totalCycles - current);
  const currentShare = cycle && cycle.cycle > 0 && cycle.target ? 1 - cycleFraction(cycle) : 0;
  return mean * (after + currentShare);
}

function cycleFraction(c: CycleProgress): number {
  // Sampling and evaluation dominate a cycle's time; count them equally.
  const trainable = validAtAnyAttempt(c);
  return (c.sampled / c.target + c.validated / c.target + (trainable ? c.trained / trainable : 0)) / 3;
}

/** Every program valid at some attempt trains, repaired or not (never fewer than the first-attempt valid). */
function validAtAnyAttempt(c: CycleProgress): number {
  return Math.max(c.valid, c.validAfterRepair ?? 0);
}

export function renderWatch(s: WatchSnapshot): string {
  const lines = [`run ${s.runId}  ${s.workflowStatus}  ${s.uiUrl}`];
  if (s.progress) {
    const p = s.progress;
    const where = p.currentCycle === null ? 'between cycles' : p.currentCycle === 0 ? 'cycle 0 (baseline, seed fine-tune)' : `cycle ${p.currentCycle}`;
    lines.push(`${p.status}, ${where} of ${p.totalCycles}, sampling from ${p.model}`);
    // Between cycles the run may still be busy (the endpoint and seed checks before cycle 0).
    if (p.currentCycle === null && p.details && p.status === 'running') lines.push(`  now       ${p.details}`);
  }
  if (s.cycle && (s.cycle.cycle > 0 || s.cycle.target > 0)) {
    const c = s.cycle;
    const trainable = validAtAnyAttempt(c);
    const valid = trainable > c.valid ? `${c.valid} valid, ${trainable - c.valid} more after repair` : `${c.valid} valid`;
    lines.push(`  stage     ${c.stage}`, `  sampled   ${bar(c.sampled, c.target)}`, `  validated ${bar(c.validated, c.target)}  (${valid})`);
    // Cycle 0 validates the base model's baseline only: nothing of it trains or is admitted.
    if (c.cycle > 0) lines.push(`  trained   ${bar(c.trained, trainable)}`, `  admitted  ${c.admitted}`);
  } else if (s.cycle) {
    lines.push(`  stage     ${s.cycle.stage}`);
  }
  const eta = estimateRemaining(s);
  if (eta !== null && s.workflowStatus === 'RUNNING') lines.push(`ETA ${formatDuration(eta)}`);
  lines.push('', s.table);
  return lines.join('\n');
}

