import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildConfig } from '../../src/core/config';
import { DATASET_SPECS } from '../../src/core/datasets';
import { renderDesignPrompt, renderTemplate, sha256, taskFromConfig, TemplateError } from '../../src/core/prompts';
import { loadPromptTemplate } from '../../src/llm/prompt-files';

const template = loadPromptTemplate('design-v1');

describe('prompt templates', () => {
  test('placeholders, optional sections, verbatim values', () => {
    assert.equal(renderTemplate('a {{x}} b{{#r}} [{{y}}]{{/r}}.', { x: '1', r: '', y: '2' }), 'a 1 b.');
    assert.equal(renderTemplate('a {{x}} b{{#r}} [{{y}}]{{/r}}.', { x: '{{y}}', r: 'yes', y: '2' }), 'a {{y}} b [2].');
    assert.throws(() => renderTemplate('{{missing}}', {}), TemplateError);
    assert.throws(() => renderTemplate('{{#open}} never closed', { open: 'x' }), /unbalanced section/);
  });

  test('the design prompt states task, budget, objective, novelty and the contract', () => {
    const config = buildConfig('demo', {});
    const prompt = renderDesignPrompt(template, taskFromConfig(config));
    assert.match(prompt.body, /Dataset: Fashion-MNIST, 10 classes\./);
    assert.match(prompt.body, /shape \(B, 1, 28, 28\).*mean \(0\.286,\), std \(0\.353,\)/);
    assert.match(prompt.body, /at most 2,000,000 trainable parameters/);
    assert.match(prompt.body, /batches of 64, with the hyperparameters prm = \{'lr': 0\.01, 'momentum': 0\.9, 'dropout': 0\.2\}/);
    assert.match(prompt.body, /highest possible test accuracy after that single epoch/);
    assert.match(prompt.body, /Invent an architecture of your own/);
    for (const part of ['def supported_hyperparameters', 'class Net(nn.Module)', 'def train_setup(self, prm)', 'def learn(self, train_data)']) {
      assert.ok(prompt.body.includes(part), part);
    }
    assert.doesNotMatch(prompt.body, /Reference architecture|\{\{/);
    assert.equal(prompt.hash, sha256(prompt.body));
    assert.equal(prompt.templateHash, sha256(template.text));
    assert.equal(prompt.template, 'design-v1');
  });

  test('each dataset spec reaches the prompt; a reference is quoted with its accuracy', () => {
    const config = buildConfig('paper', {});
    const cifar = renderDesignPrompt(template, taskFromConfig(config));
    assert.match(cifar.body, /CIFAR-10, 10 classes.*\n.*\(B, 3, 32, 32\)/);
    const synthetic = renderDesignPrompt(template, taskFromConfig(config, DATASET_SPECS.synthetic));
    assert.match(synthetic.body, /synthetic CIFAR-shaped/);
    const withReference = renderDesignPrompt(template, taskFromConfig(config), { code: 'class Net:\n    x = "{{not a placeholder}}"\n', accuracy: 0.6234, datasetTitle: 'CIFAR-10' });
    assert.match(withReference.body, /reached 62\.3 % accuracy on CIFAR-10/);
    assert.ok(withReference.body.includes('```python\nclass Net:\n    x = "{{not a placeholder}}"\n```'));
    assert.notEqual(withReference.hash, cifar.hash);
  });

  test('template names are file stems, never paths', () => {
    assert.throws(() => loadPromptTemplate('../package'), /invalid prompt template name/);
    assert.throws(() => loadPromptTemplate('no-such-template'), /not found/);
  });
});
