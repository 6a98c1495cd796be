import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { noveltyReport, register } from '../../src/cli/novelty';

const file = (name: string) => path.join(__dirname, '..', 'fixtures', 'novelty', name);

test('archloop novelty prints pairwise estimated and exact Jaccard, flagging near-duplicates', async () => {
  const report = await noveltyReport([file('alexnet_small.py'), file('alexnet_renamed.py'), file('vgg_like.py')], {});
  const pairs = report.split('\n').filter((line) => line.includes('.py  ') && /\d\.\d{4}/.test(line));
  assert.equal(pairs.length, 3);
  assert.match(pairs[0]!, /alexnet_small\.py\s+\S+alexnet_renamed\.py\s+1\.0000\s+1\.0000\s+near-duplicate$/);
  assert.doesNotMatch(pairs[1]!, /near-duplicate/);
  assert.match(report, /affine32\/s1\/p128\/k7\/n1-ins/);
});

test('switches change the signatures and validate their input', async () => {
  const raw = await noveltyReport([file('alexnet_small.py'), file('alexnet_renamed.py')], { raw: true, shingleSize: 10, numPerm: 256 });
  assert.match(raw, /p256\/k10\/n1-raw/);
  assert.doesNotMatch(raw.split('\n').at(-1)!, /near-duplicate/); // without normalization the renamed copy differs
  const program = new Command('archloop').exitOverride().configureOutput({ writeErr: () => {} });
  register(program);
  await assert.rejects(program.parseAsync(['node', 'archloop', 'novelty', 'a.py', 'b.py', '--num-perm', '0']), /positive integer/);
  await assert.rejects(program.parseAsync(['node', 'archloop', 'novelty', 'a.py', 'b.py', '--dataset', 'imagenet']));
});

test('--dataset adds each program’s structural hash, validated in the sandbox', async () => {
  const report = await noveltyReport([file('alexnet_small.py'), file('vgg_like.py'), file('alexnet_small.py')], { dataset: 'synthetic' });
  const hashes = report
    .split('\n')
    .slice(report.split('\n').findIndex((line) => line.startsWith('structural hash')) + 1)
    .map((line) => line.trim().split(/\s+/)[1]);
  assert.equal(hashes.length, 3);
  for (const hash of hashes) assert.match(hash!, /^[0-9a-f]{64}$/);
  assert.equal(hashes[0], hashes[2]); // the same program, the same graph
  assert.notEqual(hashes[0], hashes[1]);
});
