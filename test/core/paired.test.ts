/** The paired test: exact McNemar p-values against hand-computed binomial tails, pairing by index, verdicts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { mcnemarExact, minDiscordantForSignificance, pairedComparison } from '../../src/core/paired';

const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} vs ${expected}`);

test('exact McNemar: twice the binomial(b + c, 1/2) tail of the smaller count, capped at 1', () => {
  close(mcnemarExact(6, 0), 2 / 64);
  close(mcnemarExact(0, 5), 2 / 32);
  close(mcnemarExact(10, 2), (2 * (1 + 12 + 66)) / 4096);
  close(mcnemarExact(3, 3), 1);
  close(mcnemarExact(0, 0), 1);
  assert.equal(minDiscordantForSignificance(0.05), 6, 'at n discordant all one way, p = 2^(1-n)');
  assert.ok(mcnemarExact(400, 300) < 0.001 && mcnemarExact(400, 300) > 0, 'large counts: no overflow');
});

test('property: symmetric in b and c, and more lopsided never raises p', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), (b, c) => {
      close(mcnemarExact(b, c), mcnemarExact(c, b));
      assert.ok(mcnemarExact(b + 1, c) <= mcnemarExact(b, c) + 1e-12 || b < c);
    }),
  );
});

test('pairs by sample index; only discordant pairs decide; indexes on one side only are left out', () => {
  const a = new Map([[0, false], [1, false], [2, false], [3, false], [4, false], [5, false], [6, true], [7, true], [9, true]]);
  const b = new Map([[0, true], [1, true], [2, true], [3, true], [4, true], [5, true], [6, true], [7, false], [8, true]]);
  const outcome = pairedComparison(a, b);
  assert.deepEqual([outcome.n, outcome.bOnly, outcome.aOnly, outcome.a.successes, outcome.b.successes], [8, 6, 1, 2, 7]);
  close(outcome.pValue, (2 * (1 + 7)) / 128);
  assert.equal(outcome.verdict, 'not distinguishable', 'p = 0.125');
  const clear = pairedComparison(new Map([0, 1, 2, 3, 4, 5].map((i) => [i, false])), new Map([0, 1, 2, 3, 4, 5].map((i) => [i, true])));
  assert.equal(clear.verdict, 'better');
  assert.equal(pairedComparison(new Map([0, 1, 2, 3, 4, 5].map((i) => [i, true])), new Map([0, 1, 2, 3, 4, 5].map((i) => [i, false]))).verdict, 'worse');
  assert.equal(pairedComparison(new Map(), new Map()).verdict, 'not measured');
});
