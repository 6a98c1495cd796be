/** The fine-tuning set: which corpus entries a cycle trains on, how they become pairs, the hash. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createFineTuneActivities, trainerJob } from '../../src/activities/finetune';
import { buildConfig } from '../../src/core/config';
import { sha256 } from '../../src/core/prompts';
import { profileOf } from '../../src/corpus/checks';
import { corpusAsOf } from '../../src/db/corpus';
import { buildPairSet } from '../../src/llm/finetune-pairs';
import { loadPromptTemplate } from '../../src/llm/prompt-files';
import { parseTrainerLine } from '../../src/llm/trainer';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { activityEnv, insertAdmitted, insertRun, insertSeed, markChecked, NET } from './support';

describe('fine-tuning pairs', () => {
  let db: TestDatabase;
  let artifacts: string;
  const template = loadPromptTemplate('design-v1');
  // The demo's profile; a seed entry teaches only once it validated there.
  const profile = profileOf(buildConfig('demo', {}));

  before(async () => {
    db = await createTestDatabase();
    artifacts = mkdtempSync(path.join(tmpdir(), 'archloop-ft-'));
    process.env.ARCHLOOP_ARTIFACTS = artifacts;
    await insertRun(db.pool, 'run-a', {});
    await insertRun(db.pool, 'run-b', {});
    await insertRun(db.pool, 'run-empty', {});
    for (const [name, width, accuracy] of [['SeedHigh', 16, 0.7], ['SeedLow', 8, 0.3]] as const) {
      const id = await insertSeed(db.pool, name, NET(width), accuracy);
      await markChecked(db.pool, id, profile, true);
    }
    const failing = await insertSeed(db.pool, 'SeedFailsAtThisShape', NET(77), 0.9);
    await markChecked(db.pool, failing, profile, false, 'forward');
    await insertSeed(db.pool, 'SeedNotChecked', NET(78), 0.9);
    await insertAdmitted(db.pool, 'run-a', 0, NET(40), 'PROMPT THAT MADE NET 40');
    await insertAdmitted(db.pool, 'run-a', 1, NET(41), 'PROMPT THAT MADE NET 41');
    await insertAdmitted(db.pool, 'run-b', 0, NET(99), 'OTHER RUN');
  });
  after(async () => {
    await db?.drop();
    rmSync(artifacts, { recursive: true, force: true });
    delete process.env.ARCHLOOP_ARTIFACTS;
  });

  test('the corpus after a cycle: valid seed + this run up to and including the cycle, never another run', async () => {
    const names = async (cycle: number) =>
      (await corpusAsOf(db.pool, 'run-a', cycle, profile)).map((row) => row.code.match(/Conv2d\(in_shape\[1\], (\d+)/)![1]);
    // Cycle n's admissions reach the fine-tune right after cycle n; seeds that failed, or were never checked, at this shape teach nothing.
    assert.deepEqual(await names(0), ['16', '8', '40']);
    assert.deepEqual(await names(1), ['16', '8', '40', '41']);
    assert.deepEqual(await names(2), ['16', '8', '40', '41']);
    assert.deepEqual((await corpusAsOf(db.pool, 'run-a', 1, 'cifar10/3x32x32/params<=1/flops<=1')).length, 2, 'another profile: no seed checked there');
  });

  test('admitted entries keep the prompt that produced them; seed entries get the template for their dataset', async () => {
    const config = buildConfig('demo', {});
    const set = buildPairSet(await corpusAsOf(db.pool, 'run-a', 2, profile), config, template);
    assert.equal(set.pairs.length, 4);
    const byWidth = (w: number) => set.pairs.find((p) => p.messages[1]!.content.includes(`in_shape[1], ${w}, 3`))!;
    assert.equal(byWidth(40).messages[0]!.content, 'PROMPT THAT MADE NET 40');
    assert.match(byWidth(16).messages[0]!.content, /Dataset: CIFAR-10, 10 classes/);
    assert.doesNotMatch(byWidth(16).messages[0]!.content, /Reference architecture/);
    assert.match(byWidth(16).messages[1]!.content, /^```python\nimport torch\n[\s\S]*\n```$/);
    assert.deepEqual(byWidth(16).messages.map((m) => m.role), ['user', 'assistant']);
    assert.equal(set.dataHash, sha256(set.jsonl));
    assert.equal(set.jsonl.trim().split('\n').length, 4);
    assert.deepEqual(buildPairSet(await corpusAsOf(db.pool, 'run-a', 2, profile), config, template).dataHash, set.dataHash);
    assert.notEqual(buildPairSet(await corpusAsOf(db.pool, 'run-a', 0, profile), config, template).dataHash, set.dataHash);
  });

  test('lora.maxPairs prefers this run (newest first), then seed by accuracy; maxSeqLen drops what would be cut', async () => {
    const rows = await corpusAsOf(db.pool, 'run-a', 2, profile);
    const capped = buildPairSet(rows, buildConfig('demo', { lora: { maxPairs: 3 } }), template);
    assert.deepEqual(capped.pairs.map((p) => p.messages[1]!.content.match(/in_shape\[1\], (\d+)/)![1]), ['16', '40', '41']);
    assert.equal(capped.skippedOverCap, 1);
    const short = buildPairSet(rows, buildConfig('demo', { lora: { maxSeqLen: 600 } }), template);
    assert.deepEqual([short.pairs.length, short.skippedTooLong], [2, 2]); // the two stored prompts are short
  });

  test('the trainer job carries the LoRA config', async () => {
    const job = trainerJob(buildConfig('paper', {}), { baseModel: '/m', pairsFile: '/p.jsonl', outputDir: '/o', previousAdapter: null });
    assert.deepEqual([job.r, job.alpha, job.dropout, job.lr, job.epochs, job.bf16, job.load4bit, job.targetModules.length], [32, 32, 0.05, 1e-5, 5, true, true, 7]);
  });

  test('an empty corpus fails fine-tuning for good, before any trainer starts', async () => {
    // A database of its own, with the run and no corpus at all.
    const empty = await createTestDatabase();
    try {
      await insertRun(empty.pool, 'run-empty', {});
      const { fineTuneLora } = createFineTuneActivities({ pool: empty.pool });
      await assert.rejects(activityEnv().run(fineTuneLora, { runId: 'run-empty', cycle: 0, previousAdapterId: null }), (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.deepEqual([error.type, error.nonRetryable], ['empty-corpus', true]);
        assert.match(error.message, /corpus is empty.*import-lemur/);
        return true;
      });
    } finally {
      await empty.drop();
    }
  });

  test('trainer output: events are validated, other stdout lines ignored', () => {
    assert.deepEqual(parseTrainerLine('{"event":"progress","step":3,"totalSteps":10,"loss":1.5}'), { event: 'progress', step: 3, totalSteps: 10, loss: 1.5 });
    assert.equal(parseTrainerLine('Loading checkpoint shards: 100%'), undefined);
    assert.equal(parseTrainerLine('{"not":"an event"}'), undefined);
    assert.throws(() => parseTrainerLine('{"event":"error","class":"disk-full","message":"x"}'));
  });
});
