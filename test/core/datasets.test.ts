/** The dataset facts the prompts state (src/core/datasets.ts) are what the runner feeds the networks. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { DATASET_SPECS } from '../../src/core/datasets';
import { PYTHON_SRC, pythonBin } from '../../src/env';

// The synthetic set's statistics depend on the size it was generated at (the runner caches
// whichever size was asked for first): only its shape and classes are fixed facts.
const tolerance = { synthetic: 0.1, 'fashion-mnist': 0.005 } as const;

for (const name of ['synthetic', 'fashion-mnist'] as const) {
  test(`${name}: prompt spec = runner's dataset-spec`, () => {
    const out = execFileSync(pythonBin(), ['-m', 'archloop.runner', 'dataset-spec', '--dataset', name], {
      env: { ...process.env, PYTHONPATH: PYTHON_SRC },
      encoding: 'utf8',
    });
    const runner = JSON.parse(out.trim().split('\n').pop()!);
    const ours = DATASET_SPECS[name];
    assert.deepEqual(runner.inputShape, [...ours.shape]);
    assert.equal(runner.classes, ours.classes);
    runner.mean.forEach((m: number, i: number) => assert.ok(Math.abs(m - ours.mean[i]!) < tolerance[name], `mean[${i}] ${m}`));
    runner.std.forEach((s: number, i: number) => assert.ok(Math.abs(s - ours.std[i]!) < tolerance[name], `std[${i}] ${s}`));
  });
}
