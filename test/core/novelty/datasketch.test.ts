/**
 * Bit-identity with datasketch 2.x: the same items give the same MinHash signature, and
 * the same threshold gives the same LSH band layout. datasketch runs in the venv.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { minhashSignature, optimalBandLayout, RECALL_WEIGHTS, normalizedTokens, shingles } from '../../../src/core/novelty';
import { datasketch } from './oracle';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'novelty');
const programs = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.py'))
  .map((name) => readFileSync(path.join(FIXTURES, name), 'utf8'));

test('MinHash signatures equal datasketch for random and real token sets', () => {
  const randomSets = fc.sample(fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { maxLength: 300 }), {
    seed: 20260102,
    numRuns: 40,
  });
  const realSets = programs.flatMap((code) => [
    [...shingles(normalizedTokens(code), 7)],
    [...shingles(normalizedTokens(code, { identifiers: false, numbers: false, strings: false }), 10)],
  ]);
  const specs = [
    ...randomSets.map((items, i) => ({ num_perm: 128, seed: 1, items, i })),
    ...realSets.map((items) => ({ num_perm: 128, seed: 1, items })),
    { num_perm: 256, seed: 1, items: realSets[0]! },
    { num_perm: 16, seed: 42, items: realSets[1]! },
    { num_perm: 128, seed: 7, items: randomSets[3]! },
    { num_perm: 128, seed: 1, items: [] },
  ].map(({ num_perm, seed, items }) => ({ num_perm, seed, items }));
  const expected = datasketch({ minhash: specs }).signatures;
  assert.equal(expected.length, specs.length);
  specs.forEach((spec, i) => {
    const ours = Array.from(minhashSignature(spec.items, { numPerm: spec.num_perm, seed: spec.seed }));
    assert.deepEqual(ours, expected[i], `set ${i} (${spec.items.length} items, num_perm ${spec.num_perm}, seed ${spec.seed})`);
  });
});

test('LSH band layouts equal datasketch _optimal_param', () => {
  const even: [number, number] = [0.5, 0.5];
  const recall: [number, number] = [RECALL_WEIGHTS.falsePositive, RECALL_WEIGHTS.falseNegative];
  const specs = [
    ...[0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95].flatMap((threshold) => [
      { threshold, num_perm: 128, weights: even },
      { threshold, num_perm: 128, weights: recall },
    ]),
    ...[0.5, 0.85].map((threshold) => ({ threshold, num_perm: 64, weights: even })),
    { threshold: 0.85, num_perm: 256, weights: recall },
  ];
  const expected = datasketch({ lsh: specs }).layouts;
  specs.forEach((spec, i) => {
    const layout = optimalBandLayout(spec.threshold, spec.num_perm, {
      falsePositive: spec.weights[0],
      falseNegative: spec.weights[1],
    });
    assert.deepEqual([layout.bands, layout.rows], expected[i], JSON.stringify(spec));
  });
});
