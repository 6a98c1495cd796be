/**
 * The chaos harness's pure parts (bench/chaos.ts does the I/O): what a finished run must
 * hold, counted from its rows; which worker ran which activity, from Temporal histories;
 * and the summary and table of all trials.
 */

/** Candidate statuses that mean "not judged yet": a run that completed with one of these lost work. */
const UNJUDGED = new Set(['sampled', 'valid']);

export interface CandidateRow {
  cycle: number;
  sample_index: number;
  status: string;
  admitted: boolean;
  failure_class: string | null;
}

export interface CorpusRow {
  source_key: string;
  cycle: number | null;
  candidate_id: number | null;
  candidate_admitted: boolean | null;
  candidate_key: string | null; // "<cycle>/<index>" of the candidate it came from
}

export interface AdapterRow {
  cycle: number;
  status: string;
  model_name: string | null;
}

export interface CandidateCount {
  expected: number;
  present: number;
  /** Sample indexes with no row at all. */
  missing: number;
  /** Rows beyond one per (cycle, sample index). */
  duplicated: number;
  /** Rows left unjudged (sampled, or valid but never trained) when the run ended. */
  unjudged: number;
  /** Rows whose evaluation the infrastructure lost (the cycle went on without them). */
  infraFailed: number;
  valid: number;
  trained: number;
}

export function countCandidates(rows: CandidateRow[], sampledCycles: number[], samplesPerCycle: number): CandidateCount {
  const perKey = new Map<string, number>();
  for (const row of rows) perKey.set(`${row.cycle}/${row.sample_index}`, (perKey.get(`${row.cycle}/${row.sample_index}`) ?? 0) + 1);
  let missing = 0;
  for (const cycle of sampledCycles) for (let i = 0; i < samplesPerCycle; i++) if (!perKey.has(`${cycle}/${i}`)) missing++;
  return {
    expected: sampledCycles.length * samplesPerCycle,
    present: perKey.size,
    missing,
    duplicated: [...perKey.values()].reduce((sum, n) => sum + n - 1, 0),
    unjudged: rows.filter((r) => UNJUDGED.has(r.status)).length,
    infraFailed: rows.filter((r) => r.status === 'infra-failed' || r.failure_class === 'infra-failed').length,
    valid: rows.filter((r) => !['sampled', 'extract-failed', 'invalid', 'infra-failed'].includes(r.status)).length,
    trained: rows.filter((r) => ['trained', 'novel', 'duplicate', 'admitted'].includes(r.status)).length,
  };
}

export interface CorpusCount {
  /** Admitted candidates of the run. */
  admitted: number;
  entries: number;
  /** Admitted candidates without a corpus entry. */
  missing: number;
  /** Entries beyond one per admitted candidate, or entries of a candidate that is not admitted. */
  duplicated: number;
}

export function countCorpus(candidates: CandidateRow[], entries: CorpusRow[]): CorpusCount {
  const admitted = new Set(candidates.filter((c) => c.admitted).map((c) => `${c.cycle}/${c.sample_index}`));
  const perCandidate = new Map<string, number>();
  let stray = 0;
  for (const entry of entries) {
    if (!entry.candidate_key || !entry.candidate_admitted) stray++;
    else perCandidate.set(entry.candidate_key, (perCandidate.get(entry.candidate_key) ?? 0) + 1);
  }
  return {
    admitted: admitted.size,
    entries: entries.length,
    missing: [...admitted].filter((key) => !perCandidate.has(key)).length,
    duplicated: stray + [...perCandidate.values()].reduce((sum, n) => sum + n - 1, 0),
  };
}

export interface AdapterCount {
  expected: number;
  published: number;
  /** Cycles with no published adapter. */
  missing: number;
  /** Rows beyond one per cycle. */
  duplicated: number;
}

export function countAdapters(rows: AdapterRow[], cycles: number[]): AdapterCount {
  const perCycle = new Map<number, AdapterRow[]>();
  for (const row of rows) perCycle.set(row.cycle, [...(perCycle.get(row.cycle) ?? []), row]);
  const published = cycles.filter((c) => (perCycle.get(c) ?? []).some((r) => r.status === 'published' && r.model_name)).length;
  return {
    expected: cycles.length,
    published,
    missing: cycles.length - published,
    duplicated: [...perCycle.values()].reduce((sum, list) => sum + list.length - 1, 0),
  };
}

/** The few fields of a Temporal history event the harness reads (proto JSON shape). */
export interface HistoryEvent {
  eventId?: unknown;
  eventTime?: { seconds?: unknown; nanos?: unknown } | null;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null;
  activityTaskStartedEventAttributes?: { scheduledEventId?: unknown; identity?: string | null; attempt?: number | null } | null;
  workflowTaskStartedEventAttributes?: { identity?: string | null } | null;
}

export interface Placement {
  activity: string;
  identity: string;
  attempt: number;
  /** Epoch milliseconds. */
  startedAt: number;
}

function eventMs(event: HistoryEvent): number {
  const t = event.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Math.round(Number(t.nanos ?? 0) / 1e6) : 0;
}

/**
 * Activities whose recorded attempt is a retry that started after `killedAt`, as
 * "activity → who" (a history keeps only the last attempt of each activity: its worker is
 * where the work went).
 */
export function rerunsAfter(placed: Placement[], killedAt: number, name: (identity: string) => string): string[] {
  return placed.filter((p) => p.attempt > 1 && p.startedAt >= killedAt).map((p) => `${p.activity} → ${name(p.identity)}`);
}

/** Which identity started which activity (and workflow task), when, at which attempt. */
export function placements(events: HistoryEvent[]): Placement[] {
  const scheduled = new Map<string, string>();
  const out: Placement[] = [];
  for (const event of events) {
    const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (type) scheduled.set(String(event.eventId), type);
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      out.push({
        activity: scheduled.get(String(started.scheduledEventId)) ?? '?',
        identity: started.identity ?? '?',
        attempt: started.attempt ?? 1,
        startedAt: eventMs(event),
      });
    }
    const wft = event.workflowTaskStartedEventAttributes;
    if (wft) out.push({ activity: '(workflow task)', identity: wft.identity ?? '?', attempt: 1, startedAt: eventMs(event) });
  }
  return out;
}

export type Target = 'control-1' | 'control-2' | 'gpu-1' | 'gpu-2' | 'temporal' | 'postgres' | 'llm';
export const TARGETS: readonly Target[] = ['control-1', 'control-2', 'gpu-1', 'gpu-2', 'temporal', 'postgres', 'llm'];

export interface TrialResult {
  trial: number;
  runId: string;
  target: Target | 'none';
  /** Seconds after the run started. */
  killAtS: number | null;
  downS: number | null;
  /** The kill happened while the run was still going. */
  landed: boolean;
  restartS: number | null;
  restartError: string | null;
  completed: boolean;
  workflowStatus: string;
  durationS: number;
  candidates: CandidateCount;
  corpus: CorpusCount;
  adapters: AdapterCount;
  /** Activity executions beyond the first attempt, by activity type. */
  retries: Record<string, number>;
  /** For a worker kill: activities started while it was down, by the identity that ran them. */
  whileDown: Record<string, string[]> | null;
  /** Activities re-run (attempt > 1) after the kill, as "activity → worker" (any kill). */
  rerunAfterKill: string[];
  /** Processes the killed one had started that were still alive 10 s after the kill. */
  orphans: string[];
  /** Workers that died on their own during the trial (not the victim). */
  collateral: string[];
  /** Temporal kills: the run's history was still there after the restart (SQLite persistence). */
  historySurvived: boolean | null;
  notes: string[];
}

export interface Totals {
  trials: number;
  landed: number;
  completed: number;
  lostCandidates: number;
  duplicatedCandidates: number;
  infraFailedCandidates: number;
  lostCorpus: number;
  duplicatedCorpus: number;
  lostAdapters: number;
  duplicatedAdapters: number;
  orphans: number;
  collateral: number;
  byTarget: Record<string, { trials: number; completed: number }>;
}

/** Lost candidates: indexes with no row plus rows left unjudged (infra-failed ones are counted apart). */
export function lostCandidates(c: CandidateCount): number {
  return c.missing + c.unjudged;
}

export function totals(trials: TrialResult[]): Totals {
  const sum = (f: (t: TrialResult) => number) => trials.reduce((s, t) => s + f(t), 0);
  const byTarget: Totals['byTarget'] = {};
  for (const t of trials) {
    byTarget[t.target] ??= { trials: 0, completed: 0 };
    byTarget[t.target]!.trials++;
    if (t.completed) byTarget[t.target]!.completed++;
  }
  return {
    trials: trials.length,
    landed: trials.filter((t) => t.landed).length,
    completed: trials.filter((t) => t.completed).length,
    lostCandidates: sum((t) => lostCandidates(t.candidates)),
    duplicatedCandidates: sum((t) => t.candidates.duplicated),
    infraFailedCandidates: sum((t) => t.candidates.infraFailed),
    lostCorpus: sum((t) => t.corpus.missing),
    duplicatedCorpus: sum((t) => t.corpus.duplicated),
    lostAdapters: sum((t) => t.adapters.missing),
    duplicatedAdapters: sum((t) => t.adapters.duplicated),
    orphans: sum((t) => t.orphans.length),
    collateral: sum((t) => t.collateral.length),
    byTarget,
  };
}

const fmt = (n: number | null, digits = 0) => (n === null ? '-' : n.toFixed(digits));

/** The short human table (markdown) of every trial, then the totals. */
export function formatTable(trials: TrialResult[]): string {
  const lines = [
    '| # | killed | at s | down s | landed | completed | run s | candidates (lost/dup/infra-failed) | valid/trained | corpus (lost/dup) | adapters (lost/dup) | retried activities | started while down; re-run after the kill on |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const t of trials) {
    const c = t.candidates;
    const retried = Object.entries(t.retries).map(([k, v]) => `${k}×${v}`).join(' ') || '-';
    const started = t.whileDown ? Object.entries(t.whileDown).map(([who, acts]) => `${who}: ${acts.length}`).join(', ') || 'nothing started' : '-';
    const moved = t.rerunAfterKill.length ? `${started}; re-run: ${t.rerunAfterKill.join(', ')}` : started;
    lines.push(
      `| ${t.trial} | ${t.target} | ${fmt(t.killAtS)} | ${fmt(t.downS)} | ${t.landed ? 'yes' : 'no'} | ${t.completed ? 'yes' : `**no** (${t.workflowStatus})`} | ${fmt(t.durationS)} | ` +
        `${c.present}/${c.expected} (${lostCandidates(c)}/${c.duplicated}/${c.infraFailed}) | ${c.valid}/${c.trained} | ` +
        `${t.corpus.entries} (${t.corpus.missing}/${t.corpus.duplicated}) | ${t.adapters.published}/${t.adapters.expected} (${t.adapters.missing}/${t.adapters.duplicated}) | ${retried} | ${moved} |`,
    );
  }
  const s = totals(trials);
  lines.push(
    '',
    `**${s.completed}/${s.trials} runs completed** (${s.landed} kills landed mid-run); candidates lost ${s.lostCandidates}, duplicated ${s.duplicatedCandidates}, ` +
      `infra-failed ${s.infraFailedCandidates}; corpus entries lost ${s.lostCorpus}, duplicated ${s.duplicatedCorpus}; adapters lost ${s.lostAdapters}, ` +
      `duplicated ${s.duplicatedAdapters}; orphaned processes ${s.orphans}; workers that died besides the victim ${s.collateral}.`,
  );
  return lines.join('\n');
}
