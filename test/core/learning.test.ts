/** "Did it learn?": paired where the run's samples are (exact McNemar), intervals where not, and the seed adapter's own comparison. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareRates, formatLearning, learningComparison, pairedSeedVsBase, type FirstAttempt } from '../../src/core/learning';
import { computeCycleMetrics, type CandidateOutcome } from '../../src/core/metrics';
import { pairedComparison } from '../../src/core/paired';

const outcomes = (valid: number, invalid: number): CandidateOutcome[] => [
  ...Array.from({ length: valid }, (_, i) => ({ sampleIndex: i, attempt: 0, valid: true, accuracy: 0.5, failureClass: null, admitted: false })),
  ...Array.from({ length: invalid }, (_, i) => ({ sampleIndex: valid + i, attempt: 0, valid: false, accuracy: null, failureClass: 'forward', admitted: false })),
];
const attempts = (valid: boolean[], prompt = (i: number) => `p${i % 2}`) => new Map(valid.map((v, i): [number, FirstAttempt] => [i, { valid: v, promptHash: prompt(i) }]));

test('without paired samples: disjoint intervals decide; overlapping ones say the sample is too small', () => {
  const base = computeCycleMetrics(0, outcomes(4, 28), 10);
  const seed = computeCycleMetrics(1, outcomes(24, 8), 10);
  const last = computeCycleMetrics(3, outcomes(26, 6), 10);
  const comparison = learningComparison({ cycles: [last, seed, base] });
  assert.deepEqual(comparison.points.map((p) => p.cycle), [0, 1, 3]);
  assert.equal(comparison.seedVsBase, 'better');
  assert.equal(comparison.seedVsBasePaired, null);
  assert.equal(comparison.lastVsFirst, 'not distinguishable');
  assert.equal(comparison.points[0]!.validAfterRepair, null, 'the baseline is not repaired');
  const text = formatLearning(comparison);
  assert.match(text, /base model \(cycle 0, before fine-tuning\)\s+first attempt 4\/32 = 12\.5 % \(/);
  assert.match(text, /seed fine-tune vs base model, first attempt: better \(unpaired, by intervals\)/);
  assert.match(text, /last cycle vs cycle 1: not distinguishable \(unpaired: their prompts differ; by intervals\)/);
});

test("the baseline's sample i and cycle 1's sample i on the same prompt are paired: McNemar decides, with n", () => {
  const base = computeCycleMetrics(0, outcomes(1, 5), 10);
  const seed = computeCycleMetrics(1, outcomes(4, 2), 10);
  const firstAttempts = new Map([
    [0, attempts([false, false, false, false, true, false])],
    [1, attempts([true, true, true, false, true, false])],
  ]);
  const comparison = learningComparison({ cycles: [base, seed], firstAttempts });
  assert.deepEqual([comparison.seedVsBasePaired?.n, comparison.seedVsBasePaired?.bOnly, comparison.seedVsBasePaired?.aOnly], [6, 3, 0]);
  assert.equal(comparison.seedVsBase, 'not distinguishable');
  assert.match(formatLearning(comparison), /paired on this run's prompts and seeds: 1\/6 = 16\.7 % .* → 4\/6 = 66\.7 % .*better on 3, worse on 0 of 6 paired samples, exact McNemar p = 0\.250: not distinguishable \(a difference needs at least 6 discordant pairs\)/);
  // A sample whose prompts differ (an older run whose baseline drew its own references) is not paired.
  const mixed = pairedSeedVsBase(new Map([[0, attempts([true, false], (i) => `a${i}`)], [1, attempts([true, true], (i) => (i === 0 ? 'a0' : 'other'))]]));
  assert.equal(mixed?.n, 1);
  assert.equal(pairedSeedVsBase(new Map([[1, attempts([true])]])), null);
});

test("the seed adapter's own comparison is shown with its n", () => {
  const a = new Map(Array.from({ length: 64 }, (_, i): [number, boolean] => [i, i < 20]));
  const b = new Map(Array.from({ length: 64 }, (_, i): [number, boolean] => [i, i < 36]));
  const outcome = pairedComparison(a, b);
  const text = formatLearning(
    learningComparison({ cycles: [], seedComparison: { samples: 64, a: { label: 'base' }, b: { label: 'seed adapter k' }, firstAttempt: outcome, afterRepair: outcome, novelValid: outcome, dominantFailure: { failureClass: 'forward', a: 30, b: 12 } } }),
  );
  assert.match(text, /archloop compare, n = 64 paired, base → seed adapter k/);
  assert.match(text, /first attempt: 20\/64 .* → 36\/64 .*better on 16, worse on 0 of 64 paired samples, exact McNemar p < 0\.001: better/);
  assert.match(text, /dominant failure forward: 30 → 12/);
});

test('what was not measured is said so', () => {
  assert.equal(learningComparison({ cycles: [] }).points.length, 0);
  assert.match(formatLearning(learningComparison({ cycles: [] })), /nothing measured yet/);
  const only = learningComparison({ cycles: [computeCycleMetrics(1, outcomes(3, 3), 1)] });
  assert.deepEqual([only.seedVsBase, only.lastVsFirst], ['not measured', 'not measured']);
  const worse = compareRates({ successes: 1, trials: 40, rate: 0.025, low: 0.004, high: 0.13 }, { successes: 30, trials: 40, rate: 0.75, low: 0.6, high: 0.86 });
  assert.equal(worse, 'worse');
});
