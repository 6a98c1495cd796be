/** The fine-tuning set: which corpus entries a cycle trains on, how they become pairs, the hash. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createFineTuneActivities } from '../../src/activities/finetune';
import { trainerJob } from '../../src/llm/trainer';
import { buildConfig } from '../../src/core/config';
import { promptMessages, renderDesignPrompt, sha256, taskFromConfig, type ChatMessage } from '../../src/core/prompts';
import { profileOf } from '../../src/corpus/checks';
import { storeCompletion } from '../../src/db/candidates';
import { corpusAsOf, insertAdmission } from '../../src/db/corpus';
import { storePrompt } from '../../src/db/prompts';
import { buildPairSet, replayCount } from '../../src/llm/finetune-pairs';
import { loadPromptTemplate } from '../../src/llm/prompt-files';
import { parseTrainerLine } from '../../src/llm/trainer';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { activityEnv, insertAdmitted, insertRun, insertSeed, markChecked, NET } from './support';

describe('fine-tuning pairs', () => {
  let db: TestDatabase;
  let artifacts: string;
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

  /** An admission as the loop makes one: a first attempt sampled with the design request, optionally a repair that wrote the admitted program. */
  async function admitViaRepair(runId: string, cycle: number, sampleIndex: number, code: string, repaired: boolean): Promise<ChatMessage[]> {
    const config = buildConfig('demo', {});
    const design = renderDesignPrompt(loadPromptTemplate('design-v3'), taskFromConfig(config), undefined, { prefill: true });
    const request = promptMessages(design);
    await storePrompt(db.pool, design, request);
    const base = { runId, cycle, sampleIndex, model: 'm', usage: { finishReason: 'stop' } };
    let id = await storeCompletion(db.pool, { ...base, promptHash: design.hash, completion: 'first attempt' });
    if (repaired) {
      const repair = { template: 'repair-v2', templateHash: 'r', body: `fix it ${sampleIndex}`, prefill: design.prefill, hash: `repair-${sampleIndex}` };
      await storePrompt(db.pool, repair, promptMessages(repair));
      id = await storeCompletion(db.pool, { ...base, attempt: 1, parentId: id, promptHash: repair.hash, completion: code });
    }
    await insertAdmission(db.pool, {
      candidate: { id, sample_index: sampleIndex, code, accuracy: 0.8, prompt_hash: null, structural_hash: null },
      runId,
      cycle,
      dataset: 'fashion-mnist',
      provenance: {},
    });
    return request;
  }

  test("one format: a pair is the sampling request as sent — the run's dataset and shape, the prefilled header — and what the model writes after it", async () => {
    const config = buildConfig('demo', {});
    const v3 = loadPromptTemplate('design-v3');
    const set = buildPairSet(await corpusAsOf(db.pool, 'run-a', 0, profile), config, v3, { runId: 'run-a', cycle: 0 });
    const seed = set.pairs.find((p) => p.completion.includes('nn.Conv2d(in_shape[1], 16, 3)'))!;
    const [user, prefill] = seed.messages;
    assert.deepEqual(seed.messages.map((m) => m.role), ['user', 'assistant']);
    // The seed validated at the run's shape, and its pair says so (not the seed's own CIFAR-10).
    assert.match(user!.content, /Fashion-MNIST images[\s\S]*shape \(B, 1, 28, 28\)/);
    assert.doesNotMatch(user!.content, /CIFAR-10 images|\(B, 3, 32, 32\)/);
    // A reference program, as sampling shows one: accurate enough, and never the program itself.
    const reference = /## A network from the corpus\nIt reached [\d.]+ % accuracy[^\n]*\n\n```python\n([\s\S]*?)\n```/.exec(user!.content);
    assert.ok(reference, user!.content);
    assert.ok(!reference[1]!.includes('nn.Conv2d(in_shape[1], 16, 3)'));
    const sampled = renderDesignPrompt(v3, taskFromConfig(config), undefined, { prefill: true });
    assert.equal(prefill!.content, sampled.prefill, 'the prefilled header, exactly as sampling sends it');
    assert.ok(!seed.completion.includes('def train_setup') && !seed.completion.includes('super().__init__()'), 'the header already wrote these');
    assert.match(seed.completion, /^ {8}self\.body = [\s\S]*def forward\(self, x\):[\s\S]*\n```$/);
    assert.equal(set.rewritten, set.pairs.length, 'LEMUR layout, fitted to the header');
    assert.equal(set.dataHash, sha256(set.jsonl));
    assert.deepEqual(JSON.parse(set.jsonl.split('\n')[0]!), set.pairs[0]);
  });

  test('a repaired admission is paired with its design request, not the repair prompt; the loss starts after the prefill', async () => {
    await insertRun(db.pool, 'run-r', {});
    const header = renderDesignPrompt(loadPromptTemplate('design-v3'), taskFromConfig(buildConfig('demo', {})), undefined, { prefill: true }).prefill.replace(/^```python\n/, '');
    const code = `${header}        self.fc = nn.Linear(in_channels, num_classes)\n\n    def forward(self, x):\n        return self.fc(x.mean((2, 3)))\n`;
    const request = await admitViaRepair('run-r', 1, 0, code, true);
    const set = buildPairSet(await corpusAsOf(db.pool, 'run-r', 1, profile), buildConfig('demo', {}), loadPromptTemplate('design-v3'), { runId: 'run-r', cycle: 1 });
    const own = set.pairs.filter((p) => p.completion.includes('self.fc = nn.Linear(in_channels, num_classes)'));
    assert.equal(own.length, 2, 'lora.passes = 2 in the demo');
    assert.deepEqual(own[0]!.messages, request, 'the first attempt\'s request, byte for byte');
    assert.equal(own[0]!.completion, '        self.fc = nn.Linear(in_channels, num_classes)\n\n    def forward(self, x):\n        return self.fc(x.mean((2, 3)))\n```');
  });

  test('after cycle n: each of its admissions lora.passes times, older pairs replayed up to lora.replayShare; none admitted: replay only, said', async () => {
    const rows = await corpusAsOf(db.pool, 'run-a', 1, profile);
    const template = loadPromptTemplate('design-v3');
    const at = (overrides: object, cycle = 1) => buildPairSet(rows, buildConfig('demo', { lora: overrides }), template, { runId: 'run-a', cycle });
    const widths = (set: ReturnType<typeof at>) => set.pairs.map((p) => p.completion.match(/in_shape\[1\], (\d+)/)![1]);
    const three = at({ passes: 3, replayShare: 0.5 });
    assert.deepEqual([three.own, three.passes, three.replayed], [1, 3, 3]);
    assert.deepEqual(widths(three).slice(0, 3), ['41', '41', '41']);
    assert.deepEqual(new Set(widths(three).slice(3)), new Set(['16', '8', '40']), 'three older pairs: half of six examples');
    assert.equal(three.note, null);
    const bounded = at({ passes: 2, replayShare: 0.2 });
    assert.deepEqual([bounded.own, bounded.replayed, bounded.pairs.length], [1, 0, 2], 'a fifth of 2 own examples rounds down to none');
    assert.deepEqual(at({ passes: 2, replayShare: 0.2 }).dataHash, bounded.dataHash, 'the replay draw is seeded');
    const none = at({ passes: 2 }, 2);
    assert.deepEqual([none.own, none.replayed], [0, 2]);
    assert.match(none.note!, /cycle 2 admitted no program that fits: 2 older pair\(s\) replayed only/);
    assert.deepEqual([replayCount(6, 0.5, 10), replayCount(6, 0.25, 10), replayCount(6, 0.5, 2), replayCount(0, 0.5, 3)], [6, 2, 2, 0]);
  });

  test('the seed fine-tune: lora.maxPairs prefers this run (newest first), then seed by accuracy; maxSeqLen drops what would be cut; a program that cannot continue the header is left out and counted', async () => {
    const rows = await corpusAsOf(db.pool, 'run-a', 2, profile);
    const template = loadPromptTemplate('design-v3');
    const capped = buildPairSet(rows, buildConfig('demo', { lora: { maxPairs: 3 } }), template, { runId: 'run-a', cycle: 0 });
    assert.deepEqual(capped.pairs.map((p) => p.completion.match(/in_shape\[1\], (\d+)/)![1]), ['16', '40', '41']);
    assert.equal(capped.skippedOverCap, 1);
    const short = buildPairSet(rows, buildConfig('demo', { lora: { maxSeqLen: 1000 } }), template, { runId: 'run-a', cycle: 0 });
    assert.deepEqual([short.pairs.length, short.skippedTooLong], [0, 4]);
    const odd = { ...rows[0]!, id: 999, code: rows[0]!.code.replace('prm, device)', 'prm, device, extra=None)') };
    const withOdd = buildPairSet([...rows, odd], buildConfig('demo', {}), template, { runId: 'run-a', cycle: 0 });
    assert.deepEqual(withOdd.skippedNoFit, { '__init__ takes other parameters than (self, in_shape, out_shape, prm, device)': 1 });
    assert.equal(withOdd.pairs.length, 4);
  });

  test('the trainer job carries the LoRA config', async () => {
    const job = trainerJob(buildConfig('paper', {}), { baseModel: '/m', pairsFile: '/p.jsonl', outputDir: '/o', previousAdapter: null });
    assert.deepEqual([job.r, job.alpha, job.dropout, job.lr, job.epochs, job.bf16, job.load4bit, job.targetModules.length], [32, 32, 0.05, 1e-5, 1, true, true, 7]);
    assert.equal(trainerJob(buildConfig('paper', {}), { baseModel: '/m', pairsFile: '/p.jsonl', outputDir: '/o', previousAdapter: null }, true).epochs, 5, 'epochs: the seed fine-tune; passes: after a cycle');
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
