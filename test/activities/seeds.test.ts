/**
 * checkSeedCorpus refuses a run before cycle 0 when the seed fine-tune would have nothing to
 * learn from: no entry valid at the run's shape, or none short enough for lora.maxSeqLen.
 * (The entries here are already checked, so no sandbox runs.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createSeedActivities } from '../../src/activities/seeds';
import { profileOf } from '../../src/corpus/checks';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { uncheckedSeeds } from '../../src/db/corpus';
import { activityEnv, insertRun, insertSeed, markChecked, NET, runActivity } from '../llm/support';

let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
});

after(async () => {
  await db?.drop();
});

async function checkedSeed(name: string, code: string, valid: boolean, profile: string): Promise<void> {
  const id = await insertSeed(db.pool, name, code, 0.6, 'fashion-mnist');
  await markChecked(db.pool, id, profile, valid, valid ? null : 'forward');
}

test('a run starts when a valid seed makes a fine-tune pair, and refuses when none does', async () => {
  const { checkSeedCorpus } = createSeedActivities({ pool: db.pool });
  const fits = await insertRun(db.pool, 'seeds-fit', { dataset: { name: 'fashion-mnist' } });
  await checkedSeed('short', NET(8), true, profileOf(fits));
  await checkedSeed('broken', NET(4), false, profileOf(fits));
  assert.deepEqual(await runActivity(activityEnv(), checkSeedCorpus, { runId: 'seeds-fit' }), { kept: 1, checked: 2, rejected: { forward: 1 } });

  // The same corpus under a cap that not even the prompt fits.
  await insertRun(db.pool, 'seeds-too-long', { dataset: { name: 'fashion-mnist' }, lora: { maxSeqLen: 64 } });
  await assert.rejects(runActivity(activityEnv(), checkSeedCorpus, { runId: 'seeds-too-long' }), (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure && error.nonRetryable);
    assert.equal(error.type, 'SeedPairsTooLong');
    assert.match(error.message, /none of the 1 seed entries .* makes a fine-tune pair: 1 longer than lora\.maxSeqLen \(64 tokens.*import-lemur --limit N --max-chars N.*lora\.seedFrom self/);
    return true;
  });

  // Without a seed fine-tune the length does not matter.
  await insertRun(db.pool, 'seeds-no-seed-tune', { dataset: { name: 'fashion-mnist' }, lora: { maxSeqLen: 64, seedFineTune: false } });
  assert.equal((await runActivity(activityEnv(), checkSeedCorpus, { runId: 'seeds-no-seed-tune' })).kept, 1);
});

test('a corpus with no entry valid at the run\'s shape refuses the run, saying how to import more', async () => {
  const { checkSeedCorpus } = createSeedActivities({ pool: db.pool });
  const config = await insertRun(db.pool, 'seeds-none', { dataset: { name: 'cifar10' } });
  await checkedSeed('wrong-shape', NET(8), false, profileOf(config));
  // The first test's entries, checked (and failed) at this shape too.
  for (const entry of await uncheckedSeeds(db.pool, profileOf(config))) await markChecked(db.pool, entry.id, profileOf(config), false);
  await assert.rejects(runActivity(activityEnv(), checkSeedCorpus, { runId: 'seeds-none' }), (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure && error.nonRetryable);
    assert.equal(error.type, 'EmptySeedCorpus');
    assert.match(error.message, /archloop corpus import-lemur/);
    return true;
  });
});
