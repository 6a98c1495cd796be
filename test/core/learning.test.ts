/** "Did it learn?": base vs seed adapter vs last cycle, decided by disjoint Wilson intervals. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareRates, formatLearning, learningComparison } from '../../src/core/learning';
import { computeCycleMetrics, type CandidateOutcome } from '../../src/core/metrics';

const outcomes = (valid: number, invalid: number): CandidateOutcome[] => [
  ...Array.from({ length: valid }, (_, i) => ({ sampleIndex: i, attempt: 0, valid: true, accuracy: 0.5, failureClass: null, admitted: false })),
  ...Array.from({ length: invalid }, (_, i) => ({ sampleIndex: valid + i, attempt: 0, valid: false, accuracy: null, failureClass: 'forward', admitted: false })),
];

test('disjoint intervals decide; overlapping ones say the sample is too small', () => {
  const base = computeCycleMetrics(0, outcomes(4, 28), 10);
  const seed = computeCycleMetrics(1, outcomes(24, 8), 10);
  const last = computeCycleMetrics(3, outcomes(26, 6), 10);
  const comparison = learningComparison([last, seed, base]);
  assert.deepEqual(comparison.points.map((p) => p.cycle), [0, 1, 3]);
  assert.equal(comparison.seedVsBase, 'better');
  assert.equal(comparison.lastVsFirst, 'not distinguishable');
  assert.equal(comparison.points[0]!.validAfterRepair, null, 'the baseline is not repaired');
  const text = formatLearning(comparison);
  assert.match(text, /base model \(cycle 0, before fine-tuning\)\s+first attempt 4\/32 = 12\.5 % \(/);
  assert.match(text, /seed fine-tune vs base model: better; last cycle vs cycle 1: not distinguishable/);
});

test('what was not measured is said so', () => {
  assert.equal(learningComparison([]).points.length, 0);
  assert.match(formatLearning(learningComparison([])), /nothing measured yet/);
  const only = learningComparison([computeCycleMetrics(1, outcomes(3, 3), 1)]);
  assert.deepEqual([only.seedVsBase, only.lastVsFirst], ['not measured', 'not measured']);
  const worse = compareRates({ successes: 1, trials: 40, rate: 0.025, low: 0.004, high: 0.13 }, { successes: 30, trials: 40, rate: 0.75, low: 0.6, high: 0.86 });
  assert.equal(worse, 'worse');
});
