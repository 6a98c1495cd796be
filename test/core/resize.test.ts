/** dataset.resize, nn-gpt's evaluation protocol as an option: off by default, and when on, every stage states the resized shape. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildConfig, ConfigError } from '../../src/core/config';
import { DATASET_SPECS, runDatasetSpec } from '../../src/core/datasets';
import { renderDesignPrompt, taskFromConfig } from '../../src/core/prompts';
import { profileOf } from '../../src/corpus/checks';
import type { CorpusRow } from '../../src/db/corpus';
import { pairFor } from '../../src/llm/finetune-pairs';
import { loadPromptTemplate } from '../../src/llm/prompt-files';
import { buildRequest, settingsFromEnv } from '../../src/sandbox/request';

const template = loadPromptTemplate('design-v2');
const native = buildConfig('paper');
const resized = buildConfig('paper', { dataset: { resize: 256 } });

test('both presets keep the native resolution; resize is an override', () => {
  assert.equal(native.dataset.resize, null);
  assert.equal(buildConfig('demo').dataset.resize, null);
  assert.equal(resized.dataset.resize, 256);
  assert.equal(resized.dataset.name, 'cifar10', 'siblings keep the preset value');
  assert.throws(() => buildConfig('paper', { dataset: { resize: 0 } }), (e: ConfigError) => /dataset\.resize/.test(e.message));
  assert.throws(() => buildConfig('paper', { dataset: { resize: 25.5 } }), /dataset\.resize/);
});

test('the run dataset spec is the native one, or (C, N, N) when resized', () => {
  assert.equal(runDatasetSpec(native.dataset), DATASET_SPECS.cifar10);
  assert.deepEqual(runDatasetSpec(resized.dataset), { ...DATASET_SPECS.cifar10, shape: [3, 256, 256] });
  assert.deepEqual(runDatasetSpec({ name: 'fashion-mnist', resize: 64 }).shape, [1, 64, 64]);
});

test('the design prompt states the shape the network will see', () => {
  assert.match(renderDesignPrompt(template, taskFromConfig(native)).body, /shape \(B, 3, 32, 32\)/);
  assert.match(renderDesignPrompt(template, taskFromConfig(resized)).body, /shape \(B, 3, 256, 256\)/);
});

test('a seed validated at 32×32 does not count at 256×256: the profile carries the shape', () => {
  assert.equal(profileOf(native), 'cifar10/3x32x32/params<=50000000/flops<=50000000000', 'unchanged for native runs');
  assert.equal(profileOf(resized), 'cifar10/3x256x256/params<=50000000/flops<=50000000000');
});

test("a seed entry's fine-tune pair states the run's resized shape", () => {
  const code = readFileSync('test/fixtures/lemur-wheel/ab/nn/nn/TinyNet.py', 'utf8');
  const seed: CorpusRow = { id: 1, source: 'lemur', name: 'TinyNet', code, dataset: 'cifar10', accuracy: 0.5, run_id: null, cycle: null, prompt_hash: null, prompt_body: null, design_messages: null };
  const prompt = (config: typeof native) => {
    const made = pairFor(seed, config, template);
    assert.ok('pair' in made);
    return made.pair.messages.find((m) => m.role === 'user')!.content;
  };
  assert.match(prompt(native), /\(B, 3, 32, 32\)/);
  assert.match(prompt(resized), /\(B, 3, 256, 256\)/);
});

test('the runner request carries the resize (null when native)', () => {
  const settings = settingsFromEnv({});
  assert.equal(buildRequest('validate', '', native, settings).dataset.resize, null);
  assert.equal(buildRequest('train', '', resized, settings).dataset.resize, 256);
});
