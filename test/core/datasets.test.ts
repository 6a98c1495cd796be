/** The dataset facts the prompts state (src/core/datasets.ts) are what the runner feeds the networks. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { runDatasetSpec } from '../../src/core/datasets';
import { PYTHON_SRC, pythonBin } from '../../src/env';

// The synthetic set's statistics depend on the size it was generated at (the runner caches
// whichever size was asked for first): only its shape and classes are fixed facts.
const tolerance = { synthetic: 0.1, 'fashion-mnist': 0.005 } as const;

// Native resolution, and nn-gpt's protocol (dataset.resize) at its 256×256.
const cases = [
  { name: 'synthetic', resize: null },
  { name: 'fashion-mnist', resize: null },
  { name: 'synthetic', resize: 256 },
  { name: 'fashion-mnist', resize: 256 },
] as const;

for (const { name, resize } of cases) {
  test(`${name}${resize ? ` at ${resize}×${resize}` : ''}: prompt spec = runner's dataset-spec`, () => {
    const args = ['-m', 'archloop.runner', 'dataset-spec', '--dataset', name, ...(resize ? ['--resize', String(resize)] : [])];
    const out = execFileSync(pythonBin(), args, {
      env: { ...process.env, PYTHONPATH: PYTHON_SRC },
      encoding: 'utf8',
    });
    const runner = JSON.parse(out.trim().split('\n').pop()!);
    const ours = runDatasetSpec({ name, resize });
    assert.deepEqual(runner.inputShape, [...ours.shape]);
    assert.equal(runner.classes, ours.classes);
    runner.mean.forEach((m: number, i: number) => assert.ok(Math.abs(m - ours.mean[i]!) < tolerance[name], `mean[${i}] ${m}`));
    runner.std.forEach((s: number, i: number) => assert.ok(Math.abs(s - ours.std[i]!) < tolerance[name], `std[${i}] ${s}`));
  });
}
