import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SelectionConfig } from '../../src/core/config';
import { percentileOf, selectCandidates, type SelectionCandidate } from '../../src/core/selection';

const paper = SelectionConfig.parse({});
const pool = (accuracies: number[]): SelectionCandidate[] =>
  accuracies.map((accuracy, i) => ({ id: 100 + i, sampleIndex: i, accuracy }));
const ids = (candidates: SelectionCandidate[]) => candidates.map((c) => c.id);

test('the paper threshold admits >= 0.40 when at least 15 qualify', () => {
  const accuracies = [...new Array(15).fill(0.4), 0.39, 0.36, 0.1];
  const selection = selectCandidates(pool(accuracies), paper);
  assert.equal(selection.threshold, 0.4);
  assert.equal(selection.fallbackUsed, false);
  assert.deepEqual(ids(selection.admitted), ids(pool(accuracies)).slice(0, 15));
});

test('fewer than 15 at 0.40 falls back to 0.35, ties at the cut included', () => {
  const selection = selectCandidates(pool([0.5, 0.35, 0.349, 0.35, 0.9]), paper);
  assert.equal(selection.threshold, 0.35);
  assert.equal(selection.fallbackUsed, true);
  assert.deepEqual(ids(selection.admitted), [100, 101, 103, 104]);
});

test('an empty cycle admits nothing', () => {
  assert.deepEqual(selectCandidates([], paper), { admitted: [], threshold: 0.35, fallbackUsed: true });
  assert.deepEqual(selectCandidates([], { ...paper, mode: 'percentile' }), { admitted: [], threshold: 0.4, fallbackUsed: false });
});

test('percentile mode admits at or above the interpolated percentile, ties included', () => {
  assert.equal(percentileOf([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(percentileOf([5], 0.8), 5);
  const settings = { ...paper, mode: 'percentile' as const, percentile: 0.8 };
  const selection = selectCandidates(pool([0.2, 0.6, 0.6, 0.6, 0.1, 0.3]), settings);
  assert.equal(selection.threshold, 0.6);
  assert.deepEqual(ids(selection.admitted), [101, 102, 103]);
});

test('selection is in sample order and independent of input order', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), fc.boolean(), (accuracies, percentile) => {
      const settings = { ...paper, mode: percentile ? ('percentile' as const) : ('threshold' as const) };
      const forward = selectCandidates(pool(accuracies), settings);
      const reversed = selectCandidates([...pool(accuracies)].reverse(), settings);
      assert.deepEqual(forward, reversed);
      const indices = forward.admitted.map((c) => c.sampleIndex);
      assert.deepEqual(indices, [...indices].sort((a, b) => a - b));
      const admitted = new Set(ids(forward.admitted));
      for (const c of pool(accuracies)) assert.equal(admitted.has(c.id), c.accuracy >= forward.threshold);
    }),
    { seed: 5, numRuns: 100 },
  );
});
