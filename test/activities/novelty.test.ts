/**
 * checkNovelty and selectAndAdmit against a real Postgres: verdicts with nearest
 * neighbours, scope (seed corpus, this run's earlier admissions, the cycle's earlier novel
 * candidates), structural duplicates, idempotent retries, admission with provenance, and
 * stored metrics equal to metrics recomputed from the candidate rows.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createBookkeepingActivities } from '../../src/activities/bookkeeping';
import { createNoveltyActivities } from '../../src/activities/novelty';
import { createSelectActivities } from '../../src/activities/select';
import { buildConfig } from '../../src/core/config';
import { fingerprint, judgeNovelty, nearestNeighbour } from '../../src/core/novelty';
import { allNeighbours, openNoveltyIndex } from '../../src/db/novelty-index';
import { computeCycleMetrics } from '../../src/core/metrics';
import { profileOf } from '../../src/corpus/checks';
import { candidateRecords, insertCandidate, updateCandidate } from '../../src/db/candidates';
import { corpusEntries, insertCorpusEntry } from '../../src/db/corpus';
import { indexSize } from '../../src/db/novelty-index';
import { insertRunRecord, loadCycleMetrics, startCycle } from '../../src/db/runs';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { insertPrompt, markChecked } from '../llm/support';
import { fixture } from '../core/novelty/oracle';

let db: TestDatabase;
const config = buildConfig('paper');
const env = new MockActivityEnvironment();
const vgg = fixture('vgg_like.py');
const vggVariant = vgg.replace('self.pool = nn.AdaptiveMaxPool2d(1)\n', 'self.pool = nn.AdaptiveMaxPool2d(1)\n        self.drop = nn.Dropout(0.2)\n');

interface CandidateSeed {
  index: number;
  code: string;
  status: string;
  valid: boolean | null;
  accuracy: number | null;
  failureClass?: string;
  structuralHash?: string;
}

async function insertCandidates(runId: string, cycle: number, seeds: CandidateSeed[]): Promise<Map<number, number>> {
  await startCycle(db.pool, runId, cycle, 'base');
  const ids = new Map<number, number>();
  for (const c of seeds) {
    const id = await insertCandidate(
      db.pool,
      { runId, cycle, sampleIndex: c.index, model: 'base' },
      { prompt_hash: 'p1', code: c.code, status: c.status, valid: c.valid, accuracy: c.accuracy, failure_class: c.failureClass ?? null, structural_hash: c.structuralHash ?? null },
    );
    ids.set(c.index, id);
  }
  return ids;
}

async function verdicts(runId: string, cycle: number) {
  return (await candidateRecords(db.pool, { runId, cycle })).map(({ sample_index, status, novel, failure_class, novelty }) => ({
    sample_index,
    status,
    novel,
    failure_class,
    novelty,
  }));
}

const signatureCount = async () => (await indexSize(db.pool)).signatures;
const indexCounts = async () => Object.values(await indexSize(db.pool));

let seedIds: { alexnet: number; resnet: number };
let cycle1: Map<number, number>;

before(async () => {
  db = await createTestDatabase();
  for (const runId of ['run-a', 'run-b']) {
    await insertRunRecord(db.pool, { id: runId, name: 'test', preset: 'paper', config });
  }
  await insertPrompt(db.pool, 'p1', 'write a net');
  const seed = (key: string, code: string, structuralHash: string) => insertCorpusEntry(db.pool, { source: 'lemur', sourceKey: key, code, structuralHash });
  seedIds = {
    alexnet: await seed('lemur:AlexNet', fixture('alexnet_small.py'), 'S-alex'),
    resnet: await seed('lemur:ResNet', fixture('resnet_tiny.py'), 'S-res'),
  };
  cycle1 = await insertCandidates('run-a', 1, [
    { index: 0, code: fixture('alexnet_renamed.py'), status: 'trained', valid: true, accuracy: 0.5 },
    { index: 1, code: vgg, status: 'trained', valid: true, accuracy: 0.45, structuralHash: 'S-vgg' },
    { index: 2, code: vggVariant, status: 'trained', valid: true, accuracy: 0.6 },
    { index: 3, code: fixture('mixer_like.py'), status: 'trained', valid: true, accuracy: 0.38, structuralHash: 'S-res' },
    { index: 4, code: 'class Net: pass', status: 'invalid', valid: false, accuracy: null, failureClass: 'shape' },
    { index: 5, code: fixture('resnet_tiny.py'), status: 'train-failed', valid: true, accuracy: null, failureClass: 'timeout' },
    { index: 6, code: fixture('mixer_like.py'), status: 'trained', valid: true, accuracy: 0.36, structuralHash: 'S-mix' },
  ]);
});

after(async () => {
  await db?.drop();
});

test('checkNovelty marks near-duplicates of the corpus, of earlier novel candidates and of known structures', async () => {
  const { checkNovelty } = createNoveltyActivities({ pool: db.pool });
  const result = await env.run(checkNovelty, { runId: 'run-a', cycle: 1 });
  assert.deepEqual(result, { checked: 5, novel: 2, duplicates: 3 });

  const rows = await verdicts('run-a', 1);
  assert.deepEqual(
    rows.map((r) => [r.sample_index, r.status, r.novel, r.failure_class]),
    [
      [0, 'duplicate', false, 'duplicate'],
      [1, 'novel', true, null],
      [2, 'duplicate', false, 'duplicate'],
      [3, 'duplicate', false, 'duplicate'],
      [4, 'invalid', null, 'shape'],
      [5, 'train-failed', null, 'timeout'],
      [6, 'novel', true, null], // index 3 was a duplicate, so it does not count against 6
    ],
  );
  const novelty = rows.map((r) => r.novelty);
  assert.deepEqual(novelty[0].nearest, { kind: 'corpus', id: seedIds.alexnet, similarity: 1 });
  assert.deepEqual(novelty[0].reasons, ['minhash']);
  assert.equal(novelty[2].nearest.kind, 'candidate');
  assert.equal(novelty[2].nearest.id, cycle1.get(1));
  assert.ok(novelty[2].nearest.similarity >= 0.9 && novelty[2].nearest.similarity < 1);
  assert.deepEqual(novelty[3].reasons, ['structural']);
  assert.deepEqual(novelty[3].structuralMatch, { kind: 'corpus', id: seedIds.resnet });
  assert.equal(novelty[1].nearest, null); // nothing shares an LSH bucket with it
  assert.equal(novelty[1].threshold, 0.85);
  assert.equal(await signatureCount(), 2 + 5);
});

test('LSH verdicts equal brute force over every signature in scope', async () => {
  const index = await openNoveltyIndex(db.pool, config.novelty);
  const rows = (await candidateRecords(db.pool, { runId: 'run-a', cycle: 1 })).filter((row) => row.novelty !== null);
  assert.equal(rows.length, 5);
  for (const row of rows) {
    const { signature } = fingerprint(row.code!, config.novelty);
    const everything = await allNeighbours(db.pool, index.paramsId, { runId: 'run-a', cycle: 1, sampleIndex: row.sample_index });
    const brute = judgeNovelty(nearestNeighbour(signature, everything), null, config.novelty.threshold);
    assert.equal(row.novelty.reasons.includes('minhash'), !brute.novel, `sample ${row.sample_index}`);
    if (!brute.novel) assert.deepEqual(row.novelty.nearest, brute.nearest);
  }
});

test('checkNovelty is idempotent, also after a crash between candidates', async () => {
  const { checkNovelty } = createNoveltyActivities({ pool: db.pool });
  const before = await verdicts('run-a', 1);
  const counts = await indexCounts();
  // As if the first attempt died after index 3: index 6 has no verdict yet.
  await updateCandidate(db.pool, cycle1.get(6)!, { status: 'trained', novel: null, novelty: null });
  assert.deepEqual(await env.run(checkNovelty, { runId: 'run-a', cycle: 1 }), { checked: 5, novel: 2, duplicates: 3 });
  assert.deepEqual(await verdicts('run-a', 1), before);
  assert.deepEqual(await indexCounts(), counts);
});

test('selectAndAdmit falls back to 0.35 and admits with provenance, once', async () => {
  const { selectAndAdmit } = createSelectActivities({ pool: db.pool });
  const expected = { admitted: 2, threshold: 0.35, fallbackUsed: true };
  assert.deepEqual(await env.run(selectAndAdmit, { runId: 'run-a', cycle: 1 }), expected);
  assert.deepEqual(await env.run(selectAndAdmit, { runId: 'run-a', cycle: 1 }), expected);
  const rows = (await corpusEntries(db.pool, { source: 'archloop' })).sort((a, b) => a.candidate_id! - b.candidate_id!);
  assert.equal(rows.length, 2);
  assert.deepEqual(
    rows.map((r) => [r.source_key, r.run_id, r.cycle, r.candidate_id, r.prompt_hash, r.accuracy, r.structural_hash]),
    [
      ['run-a/1/1', 'run-a', 1, cycle1.get(1), 'p1', 0.45, 'S-vgg'],
      ['run-a/1/6', 'run-a', 1, cycle1.get(6), 'p1', 0.36, 'S-mix'],
    ],
  );
  assert.equal(rows[0].provenance.candidateId, cycle1.get(1));
  assert.deepEqual(rows[0].provenance.selection, { mode: 'threshold', threshold: 0.35, fallbackUsed: true });
  const statuses = (await verdicts('run-a', 1)).map((r) => r.status);
  assert.deepEqual(statuses, ['duplicate', 'admitted', 'duplicate', 'duplicate', 'invalid', 'train-failed', 'admitted']);
});

test('later cycles compare against this run’s admissions, other runs do not', async () => {
  const { checkNovelty } = createNoveltyActivities({ pool: db.pool });
  await insertCandidates('run-a', 2, [{ index: 0, code: vgg, status: 'trained', valid: true, accuracy: 0.7 }]);
  await insertCandidates('run-b', 1, [{ index: 0, code: vgg, status: 'trained', valid: true, accuracy: 0.7 }]);
  assert.deepEqual(await env.run(checkNovelty, { runId: 'run-a', cycle: 2 }), { checked: 1, novel: 0, duplicates: 1 });
  assert.deepEqual(await env.run(checkNovelty, { runId: 'run-b', cycle: 1 }), { checked: 1, novel: 1, duplicates: 0 });
  const [admittedVgg] = (await corpusEntries(db.pool, { sourceKey: 'run-a/1/1' })).map((entry) => entry.id);
  const [row] = await verdicts('run-a', 2);
  assert.deepEqual(row.novelty.nearest, { kind: 'corpus', id: admittedVgg, similarity: 1 });
});

test('stored cycle metrics equal metrics recomputed from the candidate rows', async () => {
  const { finishCycle } = createBookkeepingActivities({ pool: db.pool });
  // Seeds teach only once validated at the run's shape: AlexNet passed there, ResNet failed.
  await markChecked(db.pool, seedIds.alexnet, profileOf(config), true);
  await markChecked(db.pool, seedIds.resnet, profileOf(config), false);
  const returned = await env.run(finishCycle, { runId: 'run-a', cycle: 1 });
  const stored = (await loadCycleMetrics(db.pool, 'run-a')).find((m) => m.cycle === 1);
  const rows = await candidateRecords(db.pool, { runId: 'run-a', cycle: 1 });
  const recomputed = computeCycleMetrics(
    1,
    rows.map((r) => ({ valid: r.valid === true, accuracy: r.accuracy, failureClass: r.failure_class, admitted: r.admitted })),
    3, // the seed that passed at the run's shape + two admitted in cycle 1
  );
  assert.deepEqual(stored, recomputed);
  assert.deepEqual(returned, recomputed);
  assert.equal(recomputed.sampled, 7);
  assert.equal(recomputed.valid, 6);
  assert.equal(recomputed.trained, 5);
  assert.equal(recomputed.admitted, 2);
  assert.deepEqual(recomputed.failureClasses, { duplicate: 3, shape: 1, timeout: 1 });
});
