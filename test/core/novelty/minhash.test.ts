import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  estimateJaccard,
  exactJaccard,
  minhashSignature,
  signatureFromBytes,
  signatureToBytes,
} from '../../../src/core/novelty';
import { Mt19937, randintUint32 } from '../../../src/core/novelty/mt19937';

test('MT19937 reproduces numpy RandomState draws', () => {
  // Reference values from numpy 2.x: RandomState(1).randint(0, 2**32, 2, dtype=np.uint32),
  // RandomState(7).randint(3, 1000, 5, dtype=np.uint32), and the reference MT19937 seed 5489.
  assert.deepEqual(Array.from(randintUint32(new Mt19937(1), 0, 2 ** 32, 2)), [1791095845, 4282876139]);
  assert.deepEqual(Array.from(randintUint32(new Mt19937(7), 3, 1000, 5)), [178, 199, 540, 505, 582]);
  assert.equal(new Mt19937(5489).nextUint32(), 3499211612);
});

test('a signature depends only on the set of items', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 60 }), fc.integer(), (items, shift) => {
      const rotated = items.map((_, i) => items[(i + Math.abs(shift)) % items.length]!);
      const withDuplicates = [...items, ...items.slice(0, 5)];
      const reference = minhashSignature(items);
      assert.deepEqual(minhashSignature(rotated), reference);
      assert.deepEqual(minhashSignature(withDuplicates), reference);
    }),
    { seed: 11, numRuns: 50 },
  );
});

test('estimated Jaccard tracks the exact Jaccard', () => {
  fc.assert(
    fc.property(fc.integer({ min: 50, max: 400 }), fc.integer({ min: 0, max: 400 }), (size, overlapRaw) => {
      const overlap = Math.min(size, overlapRaw);
      const a = new Set(Array.from({ length: size }, (_, i) => `a${i}`));
      const b = new Set([...Array.from({ length: overlap }, (_, i) => `a${i}`), ...Array.from({ length: size - overlap }, (_, i) => `b${i}`)]);
      const error = Math.abs(estimateJaccard(minhashSignature(a), minhashSignature(b)) - exactJaccard(a, b));
      // 128 permutations: standard error <= 0.045, so 0.2 is a > 4-sigma bound.
      assert.ok(error < 0.2, `error ${error}`);
    }),
    { seed: 3, numRuns: 40 },
  );
});

test('signatures survive their storage form', () => {
  const signature = minhashSignature(['a', 'b', 'c']);
  const bytes = signatureToBytes(signature);
  assert.equal(bytes.length, 512);
  assert.deepEqual(signatureFromBytes(bytes), signature);
  assert.deepEqual(Array.from(minhashSignature([])), new Array(128).fill(0xffffffff));
});
