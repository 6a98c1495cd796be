/** The run config: presets, the paper's numbers, errors that name the field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig, ConfigError, parseConfig, presets } from '../../src/core/config';

test('both presets are valid configs', () => {
  for (const name of Object.keys(presets) as Array<keyof typeof presets>) {
    const config = buildConfig(name);
    assert.equal(config.preset, name);
    assert.deepEqual(parseConfig(JSON.parse(JSON.stringify(config))), config, 'JSON round trip');
  }
});

test('the paper preset carries the numbers of DESIGN.md', () => {
  const c = buildConfig('paper');
  assert.equal(c.cycles, 22);
  assert.equal(c.sampling.samplesPerCycle, 150);
  assert.deepEqual([c.sampling.temperature, c.sampling.topP, c.sampling.topK, c.sampling.maxNewTokens], [0.7, 0.95, 100, 2048]);
  assert.equal(c.dataset.name, 'cifar10');
  assert.deepEqual([c.novelty.numPerm, c.novelty.shingleSize, c.novelty.threshold], [128, 7, 0.85]);
  assert.deepEqual([c.selection.minAccuracy, c.selection.fallbackAccuracy, c.selection.fallbackMinCount], [0.4, 0.35, 15]);
  assert.deepEqual([c.lora.r, c.lora.alpha, c.lora.dropout, c.lora.lr, c.lora.epochs], [32, 32, 0.05, 1e-5, 5]);
  assert.deepEqual(c.lora.targetModules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  assert.deepEqual([c.training.lr, c.training.momentum, c.training.dropout, c.training.batchSize], [0.01, 0.9, 0.2, 16]);
  assert.equal(c.training.failBelowAccuracy, 0.12);
});

test('the demo preset is small and runs on Fashion-MNIST with the embedded model', () => {
  const c = buildConfig('demo');
  assert.equal(c.dataset.name, 'fashion-mnist');
  assert.equal(c.llm.model, 'smollm2-135m-instruct');
  assert.ok(c.cycles * c.sampling.samplesPerCycle <= 50);
});

test('an invalid config names every bad field', () => {
  assert.throws(
    () => buildConfig('demo', { sampling: { topP: 2 }, cycles: -1, lora: { bogus: 1 } }),
    (error: ConfigError) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /sampling\.topP/);
      assert.match(error.message, /cycles/);
      assert.match(error.message, /lora/);
      return true;
    },
  );
  assert.throws(() => parseConfig('not an object'), /\(root\)/);
});

test('overrides merge deeply over the preset', () => {
  const c = buildConfig('paper', { sampling: { samplesPerCycle: 10 } });
  assert.equal(c.sampling.samplesPerCycle, 10);
  assert.equal(c.sampling.topP, 0.95, 'siblings keep the preset value');
});
