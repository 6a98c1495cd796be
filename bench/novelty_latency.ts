/**
 * Novelty query latency: the LSH index in Postgres against brute force, at growing corpus
 * sizes in one run. `DATABASE_URL=postgres://…/postgres node --import tsx bench/novelty_latency.ts`
 * (creates and drops its own database). Options: --sizes 1000,10000,100000 --queries 200.
 *
 * Corpus: families of near-duplicate sets (a random base of 80-160 item hashes and variants
 * with 5-40 % of items replaced), as generated programs come in families. Signatures are
 * real MinHash signatures of those sets (item hashing skipped: it does not affect query
 * cost). Queries: half planted near-duplicates (Jaccard 0.905-0.96) of random entries, half
 * fresh sets; "planted found" counts plants whose source the LSH lookup returned.
 * LSH = bucket lookup in Postgres + fetching the hits' signatures + confirming by estimated
 * Jaccard. Brute force = estimated Jaccard against every signature, already in memory (its
 * best case: loading 100k signatures from Postgres per query would take far longer).
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { NoveltyConfig } from '../src/core/config';
import { judgeNovelty, nearestNeighbour, signatureFromHashes, type Neighbour } from '../src/core/novelty';
import { Mt19937 } from '../src/core/novelty/mt19937';
import { corpusIdsByKey, upsertSeedEntries } from '../src/db/corpus';
import { addToIndex, findNeighbours, openNoveltyIndex } from '../src/db/novelty-index';
import { analyze } from '../src/db/pool';
import { createTestDatabase } from '../test/helpers/db';

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1]! : fallback;
};
const sizes = argument('sizes', '1000,10000,100000').split(',').map(Number);
const queries = Number(argument('queries', '200'));
const settings = NoveltyConfig.parse({});
const random = new Mt19937(12345);

const randomItems = (n: number) => Array.from({ length: n }, () => random.nextUint32());
function variant(items: readonly number[], share: number): number[] {
  const replaced = Math.max(1, Math.round(items.length * share));
  const offset = random.nextUint32() % items.length;
  const rotated = [...items.slice(offset), ...items.slice(0, offset)];
  return [...rotated.slice(replaced), ...randomItems(replaced)];
}

/** Yields `count` corpus sets in families of 1-10. */
function* corpusSets(count: number): Generator<number[]> {
  let made = 0;
  while (made < count) {
    const base = randomItems(80 + (random.nextUint32() % 81));
    const family = 1 + (random.nextUint32() % 10);
    for (let member = 0; member < family && made < count; member++, made++) {
      yield member === 0 ? base : variant(base, 0.05 + (random.nextUint32() % 36) / 100);
    }
  }
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
};

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const pool = db.pool;
  try {
    const index = await openNoveltyIndex(pool, settings);
    const memory: Neighbour[] = [];
    const sets: number[][] = [];
    const scope = { runId: 'bench', cycle: 1, sampleIndex: 0 };
    const rows: string[] = [];
    console.error(`layout ${JSON.stringify(index.layout)}, ${availableParallelism()} CPUs`);
    for (const size of sizes) {
      const started = performance.now();
      const pending = [...corpusSets(size - memory.length)];
      for (let i = 0; i < pending.length; i += 2000) {
        const batch = pending.slice(i, i + 2000);
        const keys = batch.map((_, k) => `bench:${memory.length + 1 + k}`);
        await upsertSeedEntries(
          pool,
          'lemur',
          keys.map((sourceKey) => ({ sourceKey, name: sourceKey, code: '# synthetic', dataset: 'synthetic', accuracy: 0, licence: 'none', provenance: {} })),
        );
        const byKey = await corpusIdsByKey(pool, keys);
        const ids = keys.map((key) => ({ id: byKey.get(key)! }));
        const signatures = batch.map((items) => signatureFromHashes(items));
        await addToIndex(
          pool,
          index,
          signatures.map((signature, k) => ({ subject: { corpusId: ids[k]!.id }, shingles: batch[k]!.length, signature })),
        );
        signatures.forEach((signature, k) => memory.push({ kind: 'corpus', id: ids[k]!.id, signature }));
        sets.push(...batch);
      }
      await analyze(pool);
      console.error(`corpus ${size}: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);

      const lshMs: number[] = [];
      const bruteMs: number[] = [];
      let hits = 0;
      let found = 0;
      let agree = 0;
      let duplicates = 0;
      for (let q = 0; q < queries; q++) {
        const sourceAt = random.nextUint32() % sets.length;
        const planted = q % 2 === 0;
        // Replacing a share s of the items gives Jaccard (1 - s) / (1 + s): 0.96 down to 0.905.
        const items = planted ? variant(sets[sourceAt]!, 0.02 + (random.nextUint32() % 4) / 100) : randomItems(120);
        const signature = signatureFromHashes(items);
        let t = performance.now();
        const neighbours = await findNeighbours(pool, index, signature, scope);
        const lsh = judgeNovelty(nearestNeighbour(signature, neighbours), null, settings.threshold);
        lshMs.push(performance.now() - t);
        t = performance.now();
        const brute = judgeNovelty(nearestNeighbour(signature, memory), null, settings.threshold);
        bruteMs.push(performance.now() - t);
        hits += neighbours.length;
        if (planted && neighbours.some((n) => n.id === memory[sourceAt]!.id)) found++;
        if (lsh.novel === brute.novel) agree++;
        if (!brute.novel) duplicates++;
      }
      const row = [
        size.toLocaleString('en-US'),
        percentile(lshMs, 0.5).toFixed(2),
        percentile(lshMs, 0.99).toFixed(2),
        percentile(bruteMs, 0.5).toFixed(2),
        percentile(bruteMs, 0.99).toFixed(2),
        (percentile(bruteMs, 0.5) / percentile(lshMs, 0.5)).toFixed(1),
        (hits / queries).toFixed(1),
        `${found}/${Math.ceil(queries / 2)}`,
        `${agree}/${queries}`,
        `${duplicates}`,
      ];
      rows.push(`| ${row.join(' | ')} |`);
      console.error(rows[rows.length - 1]);
    }
    console.log(
      [
        '| corpus | LSH p50 ms | LSH p99 ms | brute p50 ms | brute p99 ms | brute/LSH (p50) | LSH hits/query | planted found | same verdict | duplicates (brute) |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...rows,
      ].join('\n'),
    );
  } finally {
    await db.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
