import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { computeCycleMetrics, wilsonInterval, type CandidateOutcome } from '../../src/core/metrics';
import { CycleMetrics } from '../../src/core/stages';

test('Wilson interval matches published values (Newcombe 1998, method 3)', () => {
  const cases: Array<[number, number, number, number]> = [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ];
  for (const [successes, trials, low, high] of cases) {
    const [l, h] = wilsonInterval(successes, trials);
    assert.equal(Number(l.toFixed(4)), low, `${successes}/${trials} low`);
    assert.equal(Number(h.toFixed(4)), high, `${successes}/${trials} high`);
  }
  assert.deepEqual(wilsonInterval(0, 0), [0, 0]);
  assert.equal(wilsonInterval(29, 29)[1], 1);
});

test('Wilson interval contains the proportion and stays in [0, 1]', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0, max: 1, noNaN: true }), (trials, share) => {
      const successes = Math.round(share * trials);
      const [low, high] = wilsonInterval(successes, trials);
      assert.ok(low >= 0 && high <= 1 && low <= successes / trials + 1e-12 && successes / trials <= high + 1e-12);
    }),
    { seed: 1, numRuns: 200 },
  );
});

test('cycle metrics count valid, trained, best, mean, share >= 40 %, admitted and failure classes', () => {
  const o = (valid: boolean, accuracy: number | null, failureClass: string | null, admitted = false): CandidateOutcome => ({
    valid,
    accuracy,
    failureClass,
    admitted,
  });
  const outcomes = [
    o(false, null, 'syntax'),
    o(false, null, 'shape'),
    o(true, null, 'timeout'),
    o(true, 0.3, null),
    o(true, 0.4, 'duplicate'),
    o(true, 0.5, null, true),
    o(false, null, 'syntax'),
    o(true, 0.1, 'low-accuracy'),
  ];
  const metrics = CycleMetrics.parse(computeCycleMetrics(3, outcomes, 120));
  const [low, high] = wilsonInterval(5, 8);
  assert.deepEqual(metrics, {
    cycle: 3,
    sampled: 8,
    valid: 5,
    validRate: 5 / 8,
    validRateLow: low,
    validRateHigh: high,
    validAfterRepair: 5,
    validAfterRepairRate: 5 / 8,
    validAfterRepairLow: low,
    validAfterRepairHigh: high,
    repairs: 0,
    infraFailed: 0,
    trained: 4,
    bestAccuracy: 0.5,
    meanAccuracy: (0.3 + 0.4 + 0.5 + 0.1) / 4,
    shareAbove40: 2 / 4,
    admitted: 1,
    totalTrainPrompts: 120,
    failureClasses: { syntax: 2, shape: 1, timeout: 1, duplicate: 1, 'low-accuracy': 1 },
  });
});

test('repairs: first attempts make the paper columns; a sample valid at any attempt counts after repair', () => {
  const row = (sampleIndex: number, attempt: number, valid: boolean, accuracy: number | null, failureClass: string | null): CandidateOutcome => ({
    sampleIndex,
    attempt,
    valid,
    accuracy,
    failureClass,
    admitted: false,
  });
  const metrics = computeCycleMetrics(1, [
    row(0, 0, true, 0.5, null),
    row(1, 0, false, null, 'forward'),
    row(1, 1, true, 0.4, null), // repaired
    row(2, 0, false, null, 'syntax'),
    row(2, 1, false, null, 'unchanged'),
    row(2, 2, false, null, 'forward'),
    row(3, 0, false, null, 'truncated'),
    row(3, 1, false, null, 'infra-failed'),
  ], 10);
  assert.deepEqual([metrics.sampled, metrics.valid, metrics.validAfterRepair, metrics.repairs, metrics.infraFailed], [4, 1, 2, 4, 1]);
  assert.deepEqual(metrics.failureClasses, { forward: 1, syntax: 1, truncated: 1 }, 'a sample keeps its first failure class');
  assert.deepEqual([metrics.trained, metrics.bestAccuracy], [2, 0.5], 'repaired models train and count');
  assert.deepEqual([metrics.validAfterRepairLow, metrics.validAfterRepairHigh], wilsonInterval(2, 4));
});

test('an empty cycle has zero rates and no accuracies', () => {
  const metrics = CycleMetrics.parse(computeCycleMetrics(0, [], 50));
  assert.equal(metrics.validRate, 0);
  assert.equal(metrics.bestAccuracy, null);
  assert.equal(metrics.meanAccuracy, null);
  assert.equal(metrics.shareAbove40, null);
});

test('cycle metrics do not depend on the order of the rows', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 50 }), (accuracies) => {
      const outcomes = accuracies.map((accuracy) => ({ valid: true, accuracy, failureClass: null, admitted: false }));
      assert.deepEqual(computeCycleMetrics(1, [...outcomes].reverse(), 0), computeCycleMetrics(1, outcomes, 0));
    }),
    { seed: 2, numRuns: 100 },
  );
});
