/** The run config: presets, the paper's numbers, errors that name the field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig, ConfigError, parseConfig, parseNewConfig, presets } from '../../src/core/config';

test('both presets are valid configs', () => {
  for (const name of Object.keys(presets) as Array<keyof typeof presets>) {
    const config = buildConfig(name);
    assert.equal(config.preset, name);
    assert.deepEqual(parseConfig(JSON.parse(JSON.stringify(config))), config, 'JSON round trip');
  }
});

test('the paper preset carries the numbers of docs/design.md', () => {
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
  assert.equal(c.llm.model, 'qwen2.5-coder-1.5b-instruct');
  assert.equal(c.lora.baseModel, c.llm.model, 'the adapter trains on the model that samples');
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

test('cross-field checks fail a new run’s config with one line per bad field', () => {
  const bad = {
    training: { timeLimitS: 900 },
    contract: { validateTimeoutS: 250 },
    sampling: { samplesPerCycle: 4, samplesPerActivity: 8 },
    llm: { requestTimeoutS: 2000, retryBaseDelayS: 60 },
    selection: { minAccuracy: 0.3, fallbackAccuracy: 0.35 },
    orchestration: { trainTimeoutS: 1000, validateTimeoutS: 300, sampleTimeoutS: 1800, heartbeatTimeoutS: 300 },
  };
  assert.throws(
    () => buildConfig('demo', bad),
    (error: ConfigError) => {
      assert.ok(error instanceof ConfigError);
      const lines = error.message.split('\n').slice(1).map((l) => l.trim());
      assert.deepEqual(lines.map((l) => l.split(':')[0]).sort(), [
        'llm.requestTimeoutS',
        'llm.retryBaseDelayS',
        'orchestration.heartbeatTimeoutS',
        'orchestration.trainTimeoutS',
        'orchestration.validateTimeoutS',
        'sampling.samplesPerActivity',
        'selection.fallbackAccuracy',
      ]);
      assert.ok(lines.includes('orchestration.trainTimeoutS: 1000 s is shorter than training.timeLimitS + 60 s sandbox grace + 120 s runner start = 1080 s'));
      assert.match(error.message, /heartbeatTimeoutS: 300 s must be below every stage timeout it guards, but orchestration\.validateTimeoutS is 300 s/);
      return true;
    },
  );
  // Each limit is inclusive where the work fits exactly.
  const edge = buildConfig('demo', { training: { timeLimitS: 720 }, orchestration: { trainTimeoutS: 900 }, sampling: { samplesPerCycle: 8, samplesPerActivity: 8 } });
  assert.equal(edge.orchestration.trainTimeoutS, 900);
});

test('a stored config is re-read without the cross-field checks (a run under way never fails on a new check)', () => {
  const stored = { ...buildConfig('demo'), sampling: { ...buildConfig('demo').sampling, samplesPerActivity: 99 } };
  assert.equal(parseConfig(stored).sampling.samplesPerActivity, 99);
  assert.throws(() => parseNewConfig(stored), /sampling\.samplesPerActivity: 99 is more than sampling\.samplesPerCycle \(\d+\)/);
});
