/** The chaos harness's counting: what a lost or duplicated candidate, corpus entry or adapter is. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countAdapters, countCandidates, countCorpus, formatTable, placements, rerunsAfter, totals, type CandidateRow, type TrialResult } from '../../bench/chaos-lib';

const row = (cycle: number, sample_index: number, status: string, admitted = false): CandidateRow => ({ cycle, sample_index, status, admitted, failure_class: null });

test('candidates: missing indexes, extra rows and unjudged rows are counted apart', () => {
  const rows = [row(1, 0, 'admitted', true), row(1, 1, 'invalid'), row(1, 1, 'invalid'), row(1, 3, 'sampled'), row(2, 0, 'valid'), row(2, 1, 'infra-failed')];
  assert.deepEqual(countCandidates(rows, [1, 2], 2), { expected: 4, present: 5, missing: 0, duplicated: 1, unjudged: 2, infraFailed: 1, valid: 2, trained: 1 });
  assert.equal(countCandidates(rows, [1, 2, 3], 2).missing, 2, 'cycle 3 has no rows at all');
});

test('corpus: one entry per admitted candidate; strays and repeats are duplicates', () => {
  const candidates = [row(1, 0, 'admitted', true), row(1, 1, 'admitted', true), row(1, 2, 'duplicate')];
  const entry = (key: string | null, admitted: boolean | null) => ({ source_key: `r/${key}`, cycle: 1, candidate_id: 1, candidate_admitted: admitted, candidate_key: key });
  assert.deepEqual(countCorpus(candidates, [entry('1/0', true), entry('1/0', true), entry('1/2', false)]), { admitted: 2, entries: 3, missing: 1, duplicated: 2 });
  assert.deepEqual(countCorpus(candidates, [entry('1/0', true), entry('1/1', true)]), { admitted: 2, entries: 2, missing: 0, duplicated: 0 });
});

test('adapters: every expected cycle published once', () => {
  const rows = [
    { cycle: 0, status: 'published', model_name: 'a' },
    { cycle: 1, status: 'ready', model_name: null },
    { cycle: 1, status: 'published', model_name: 'b' },
  ];
  assert.deepEqual(countAdapters(rows, [0, 1, 2]), { expected: 3, published: 2, missing: 1, duplicated: 1 });
});

test('re-runs after a kill are the retried attempts that started after it', () => {
  const placed = [
    { activity: 'sampleBatch', identity: '1@h', attempt: 2, startedAt: 2000 },
    { activity: 'sampleBatch', identity: '2@h', attempt: 1, startedAt: 3000 },
    { activity: 'fineTuneLora', identity: '3@h', attempt: 3, startedAt: 500 },
  ];
  assert.deepEqual(rerunsAfter(placed, 1000, (id) => ({ '1@h': 'control-1' })[id] ?? id), ['sampleBatch → control-1']);
});

test('placements pair each started activity with its scheduled type and identity', () => {
  const events = [
    { eventId: 5, activityTaskScheduledEventAttributes: { activityType: { name: 'sampleBatch' } } },
    { eventId: 6, eventTime: { seconds: 10, nanos: 5e8 }, activityTaskStartedEventAttributes: { scheduledEventId: 5, identity: '1@h', attempt: 2 } },
    { eventId: 7, eventTime: { seconds: 11 }, workflowTaskStartedEventAttributes: { identity: '2@h' } },
  ];
  assert.deepEqual(placements(events), [
    { activity: 'sampleBatch', identity: '1@h', attempt: 2, startedAt: 10_500 },
    { activity: '(workflow task)', identity: '2@h', attempt: 1, startedAt: 11_000 },
  ]);
});

test('totals and the table say how many runs completed and what was lost', () => {
  const base: TrialResult = {
    trial: 1, runId: 'r1', target: 'gpu-1', killAtS: 30, downS: 5, landed: true, restartS: 0, restartError: null, completed: true,
    workflowStatus: 'COMPLETED', durationS: 100,
    candidates: { expected: 4, present: 4, missing: 0, duplicated: 0, unjudged: 0, infraFailed: 0, valid: 2, trained: 2 },
    corpus: { admitted: 1, entries: 1, missing: 0, duplicated: 0 },
    adapters: { expected: 2, published: 2, missing: 0, duplicated: 0 },
    retries: { trainCandidate: 1 }, whileDown: { 'gpu-2': ['trainCandidate'] }, rerunAfterKill: ['trainCandidate → gpu-2'], orphans: [], collateral: [], historySurvived: null, notes: [],
  };
  const failed: TrialResult = { ...base, trial: 2, target: 'postgres', completed: false, workflowStatus: 'FAILED', candidates: { ...base.candidates, missing: 1, unjudged: 1 } };
  const t = totals([base, failed]);
  assert.deepEqual([t.trials, t.completed, t.lostCandidates, t.byTarget.postgres], [2, 1, 2, { trials: 1, completed: 0 }]);
  const table = formatTable([base, failed]);
  assert.match(table, /\| 1 \| gpu-1 \| 30 \| 5 \| yes \| yes \| 100 \| 4\/4 \(0\/0\/0\) \| 2\/2 \| 1 \(0\/0\) \| 2\/2 \(0\/0\) \| trainCandidate×1 \| gpu-2: 1; re-run: trainCandidate → gpu-2 \|/);
  assert.match(table, /\*\*no\*\* \(FAILED\)/);
  assert.match(table, /\*\*1\/2 runs completed\*\*/);
});
