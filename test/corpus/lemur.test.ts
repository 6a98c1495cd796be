/** LEMUR import on a small wheel in nn-dataset 2.1.2's real layout (test/fixtures/lemur-wheel). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importLemur } from '../../src/corpus/lemur';
import { ensureLemurWheel, lemurWheelPath } from '../../src/corpus/wheel-fetch';
import { licenceFor, parseLicenceRule } from '../../src/corpus/lemur-layout';
import { corpusEntries, setCorpusAccuracy } from '../../src/db/corpus';
import { pythonBin } from '../../src/env';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { buildLemurFixtureWheel } from '../helpers/lemur';

const buildWheel = buildLemurFixtureWheel;

describe('LEMUR import', () => {
  let db: TestDatabase;
  let tmp: string;
  let wheel: string;

  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'archloop-lemur-'));
    wheel = buildWheel(tmp);
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('imports architectures with their best first-epoch CIFAR-10 accuracy and licence', async () => {
    const summary = await importLemur(db.pool, { wheel });
    assert.deepEqual(
      { ...summary, wheel: undefined },
      {
        wheel: undefined,
        version: '2.1.2',
        available: 6, // Empty.py is counted under skipped.emptyCode
        considered: 6,
        inserted: 3,
        updated: 0,
        unchanged: 0,
        skipped: { noCifar10Stats: 1, emptyCode: 1, notContract: 1, noTrials: 1, badStats: 1, tooLong: 0 },
        licences: { 'BSD-3-Clause': 1, 'BSD-3-Clause AND MIT': 1, MIT: 1 },
      },
    );
    const rows = (await corpusEntries(db.pool))
      .sort((a, b) => a.source_key.localeCompare(b.source_key))
      .map((e) => ({
        source: e.source,
        source_key: e.source_key,
        name: e.name,
        dataset: e.dataset,
        accuracy: e.accuracy,
        licence: e.licence,
        run_id: e.run_id,
        uid: e.provenance.bestTrial?.uid,
        epochs: e.provenance.epochsRecorded,
        has_net: e.code.includes('class Net(nn.Module)'),
      }));
    assert.deepEqual(rows, [
      { source: 'lemur', source_key: 'lemur:AlexNet-tiny', name: 'AlexNet-tiny', dataset: 'cifar10', accuracy: 0.3125, licence: 'BSD-3-Clause', run_id: null, uid: 'bbb1', epochs: 1, has_net: true },
      { source: 'lemur', source_key: 'lemur:FCN32s-tiny', name: 'FCN32s-tiny', dataset: 'cifar10', accuracy: 0.25, licence: 'BSD-3-Clause AND MIT', run_id: null, uid: 'ccc1', epochs: 1, has_net: true },
      // epoch 1's best trial (0.5833), not epoch 2's 0.7001: archloop compares first-epoch accuracies
      { source: 'lemur', source_key: 'lemur:TinyNet', name: 'TinyNet', dataset: 'cifar10', accuracy: 0.5833, licence: 'MIT', run_id: null, uid: 'aaa2', epochs: 2, has_net: true },
    ]);
  });

  test('a second import changes nothing', async () => {
    const before = (await corpusEntries(db.pool)).map(({ id, added_at }) => ({ id, added_at }));
    const summary = await importLemur(db.pool, { wheel });
    assert.deepEqual([summary.inserted, summary.updated, summary.unchanged], [0, 0, 3]);
    const afterRows = (await corpusEntries(db.pool)).map(({ id, added_at }) => ({ id, added_at }));
    assert.deepEqual(afterRows, before);
  });

  test('a changed entry is updated in place', async () => {
    await setCorpusAccuracy(db.pool, 'lemur:TinyNet', 0.1);
    const summary = await importLemur(db.pool, { wheel });
    assert.deepEqual([summary.inserted, summary.updated, summary.unchanged], [0, 1, 2]);
    const [entry] = await corpusEntries(db.pool, { sourceKey: 'lemur:TinyNet' });
    assert.equal(entry!.accuracy, 0.5833);
  });

  test('--limit counts imported architectures, first by name', async () => {
    const summary = await importLemur(db.pool, { wheel, limit: 1 });
    assert.equal(summary.unchanged + summary.inserted + summary.updated, 1);
    assert.equal(summary.licences['BSD-3-Clause'], 1); // AlexNet-tiny sorts first
  });

  test('a wheel without architectures (like nn-dataset 2.2.x) is a clear error', async () => {
    const empty = path.join(tmp, 'empty');
    execFileSync(pythonBin(), ['-c', 'import zipfile, sys; zipfile.ZipFile(sys.argv[1], "w").writestr("ab/nn/api.py", "")', `${empty}.whl`]);
    await assert.rejects(importLemur(db.pool, { wheel: `${empty}.whl` }), /holds no architectures .* use 2\.1\.2/);
    await assert.rejects(importLemur(db.pool, { wheel: path.join(tmp, 'missing.whl') }), /reading .*missing\.whl failed/);
  });
});

describe('LEMUR wheel cache', () => {
  test('a cached wheel that is not the pinned one is refused', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'archloop-wheels-'));
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(lemurWheelPath(dir), 'not the wheel');
      await assert.rejects(ensureLemurWheel(dir), /has sha256 [0-9a-f]{64}, not the pinned/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LEMUR licence rules', () => {
  test('prefix lists are parsed from the licence files', () => {
    const rule = parseLicenceRule('BSD 3-Clause License\n\nThe python code of neural network models with file names beginning or identical to AlexNet, VGG:\nCopyright');
    assert.deepEqual(rule, { licence: 'BSD-3-Clause', prefixes: ['AlexNet', 'VGG'] });
    assert.equal(licenceFor('VGG-1234', [rule], 'MIT'), 'BSD-3-Clause');
    assert.equal(licenceFor('rl-init-abc', [rule], 'MIT'), 'MIT');
  });
});
