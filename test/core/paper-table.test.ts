import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeCycleMetrics } from '../../src/core/metrics';
import { formatPaperTable, paperRows, TEXT_TABLE_TITLES } from '../../src/core/paper-table';

const outcome = (valid: boolean, accuracy: number | null, admitted = false) => ({ valid, accuracy, failureClass: null, admitted });

const cycle1 = computeCycleMetrics(1, [outcome(true, 0.2), outcome(true, 0.45, true), outcome(false, null), outcome(false, null)], 100);
const cycle2 = computeCycleMetrics(2, [outcome(true, 0.5, true), outcome(true, 0.6, true), outcome(true, 0.3), outcome(false, null)], 102);

test('rows follow the paper columns, with a pooled row', () => {
  const rows = paperRows([cycle2, cycle1]);
  assert.deepEqual(rows.map((r) => r.cycle), [1, 2, 'all']);
  const all = rows[2]!;
  assert.equal(all.valid, 5);
  assert.equal(all.sampled, 8);
  assert.equal(all.bestAccuracy, 0.6);
  assert.ok(Math.abs(all.meanAccuracy! - (0.2 + 0.45 + 0.5 + 0.6 + 0.3) / 5) < 1e-12);
  assert.ok(Math.abs(all.shareAbove40! - 3 / 5) < 1e-12);
  assert.equal(all.unique, 3);
  assert.equal(all.totalTrainPrompts, 102);
});

test('the table prints percentages in the paper layout', () => {
  const lines = formatPaperTable([cycle1, cycle2]).split('\n');
  assert.deepEqual(lines[0]!.split(/\s{2,}/), [...TEXT_TABLE_TITLES]);
  assert.deepEqual(lines[2]!.trim().split(/\s{2,}/), ['1', '50.0 (15.0–85.0)', '45.00', '32.50', '50.00', '1', '100', '50.0']);
  assert.deepEqual(lines[5]!.trim().split(/\s{2,}/).slice(0, 2), ['all', '62.5 (30.6–86.3)']);
  assert.equal(formatPaperTable([]).split('\n').length, 2);
});

test("cycle 0, the base model's first-attempt baseline, has no after-repair rate: '—', not 0", () => {
  const baseline = computeCycleMetrics(0, [outcome(false, null), outcome(true, null)], 21);
  const [row] = paperRows([baseline]);
  assert.equal(row!.validAfterRepairRate, null);
  const line = formatPaperTable([baseline]).split('\n')[2]!.trim().split(/\s{2,}/);
  assert.deepEqual([line[0], line.at(-1)], ['0 (base)', '—']);
});
