/**
 * LSH quality on planted near-duplicates: a corpus of random sets, and variants of some
 * of them with exact Jaccard >= 0.9 to their source. Deterministic (seeded).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bandBuckets,
  collisionProbability,
  judgeNovelty,
  nearestNeighbour,
  optimalBandLayout,
  RECALL_WEIGHTS,
  signatureFromHashes,
  type BandLayout,
  type Neighbour,
} from '../../../src/core/novelty';
import { Mt19937 } from '../../../src/core/novelty/mt19937';

const THRESHOLD = 0.85;
const layout = optimalBandLayout(THRESHOLD, 128, RECALL_WEIGHTS);

class MemoryLsh {
  private readonly tables = new Map<string, number[]>();
  readonly entries: Neighbour[] = [];
  constructor(private readonly layout: BandLayout) {}
  add(id: number, signature: Uint32Array): void {
    this.entries.push({ kind: 'corpus', id, signature });
    for (const { band, bucket } of bandBuckets(signature, this.layout)) {
      const key = `${band}:${bucket}`;
      this.tables.set(key, [...(this.tables.get(key) ?? []), id]);
    }
  }
  query(signature: Uint32Array): Neighbour[] {
    const ids = new Set(bandBuckets(signature, this.layout).flatMap(({ band, bucket }) => this.tables.get(`${band}:${bucket}`) ?? []));
    return this.entries.filter((entry) => ids.has(entry.id));
  }
}

/** A set of `size` random 32-bit item hashes, and a variant with `replaced` items swapped. */
function randomSet(random: Mt19937, size: number): number[] {
  return Array.from({ length: size }, () => random.nextUint32());
}

test('the recall-weighted layout keeps near-duplicates above 0.99 collision probability', () => {
  assert.deepEqual(layout, { bands: 14, rows: 9 });
  assert.ok(collisionProbability(0.9, layout) >= 0.99);
  assert.ok(collisionProbability(0.5, layout) < 0.03);
});

test('LSH finds planted near-duplicates (Jaccard >= 0.9) and admits none that brute force rejects', (t) => {
  const random = new Mt19937(2026);
  const index = new MemoryLsh(layout);
  const sources: number[][] = [];
  for (let id = 0; id < 1500; id++) {
    const set = randomSet(random, 150 + (random.nextUint32() % 150));
    sources.push(set);
    index.add(id, signatureFromHashes(set));
  }
  let retrieved = 0;
  let confirmedByBruteForce = 0;
  const plants = 400;
  for (let p = 0; p < plants; p++) {
    const sourceId = random.nextUint32() % sources.length;
    const source = sources[sourceId]!;
    // Replacing m of n items gives Jaccard (n - m) / (n + m); keep it >= 0.9.
    const maxReplaced = Math.floor((source.length * 0.1) / 1.9);
    const replaced = 1 + (random.nextUint32() % maxReplaced);
    const variant = [...source.slice(replaced), ...randomSet(random, replaced)];
    assert.ok((source.length - replaced) / (source.length + replaced) >= 0.9);
    const signature = signatureFromHashes(variant);
    const hits = index.query(signature);
    if (hits.some((hit) => hit.id === sourceId)) retrieved++;
    const bruteForce = judgeNovelty(nearestNeighbour(signature, index.entries), null, THRESHOLD);
    const lsh = judgeNovelty(nearestNeighbour(signature, hits), null, THRESHOLD);
    if (!bruteForce.novel) {
      confirmedByBruteForce++;
      assert.equal(lsh.novel, false, `plant ${p}: brute force rejects it, LSH would admit it`);
    }
    assert.deepEqual(lsh, bruteForce, `plant ${p}: LSH and brute force disagree`);
  }
  t.diagnostic(`retrieved ${retrieved}/${plants}; estimated Jaccard >= ${THRESHOLD} for ${confirmedByBruteForce}/${plants}`);
  assert.ok(retrieved / plants >= 0.99, `recall ${retrieved / plants}`);
  assert.ok(confirmedByBruteForce / plants >= 0.95, `estimated Jaccard >= 0.85 for ${confirmedByBruteForce}/${plants}`);
});

test('programs below the threshold are not rejected', () => {
  const random = new Mt19937(99);
  const source = randomSet(random, 200);
  const index = new MemoryLsh(layout);
  index.add(1, signatureFromHashes(source));
  for (let trial = 0; trial < 200; trial++) {
    // Jaccard 0.7: replace m = n * 0.3 / 1.7 items.
    const replaced = Math.round((200 * 0.3) / 1.7);
    const offset = random.nextUint32() % source.length;
    const rotated = [...source.slice(offset), ...source.slice(0, offset)];
    const variant = [...rotated.slice(replaced), ...randomSet(random, replaced)];
    const verdict = judgeNovelty(nearestNeighbour(signatureFromHashes(variant), index.query(signatureFromHashes(variant))), null, THRESHOLD);
    assert.equal(verdict.novel, true, `trial ${trial}: Jaccard 0.7 judged a duplicate (${verdict.nearest?.similarity})`);
  }
});
