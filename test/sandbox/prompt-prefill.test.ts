/**
 * The contract the prompt hands the model must itself pass the contract: each design
 * template's prefilled reply, finished the shortest way a model could finish it (layers
 * and forward, plus the training methods where the prefill leaves them to the model),
 * validates in the real sandbox. A typo in a prefill would fail every sample of a run.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { buildConfig } from '../../src/core/config';
import { fitToHeader } from '../../src/core/header-fit';
import { designValues, renderTemplate, taskFromConfig } from '../../src/core/prompts';
import { loadPromptTemplate, PROMPTS_DIR } from '../../src/llm/prompt-files';
import { buildRequest, settingsFromEnv } from '../../src/sandbox/request';
import { runSandbox } from '../../src/sandbox/runner';
import { SMALL } from './helpers';

const LAYERS_AND_FORWARD = `
        self.features = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))
`;

const TRAINING_METHODS = `
    def train_setup(self, prm):
        self.to(self.device)
        self.criteria = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'], momentum=prm['momentum'])

    def learn(self, train_data):
        self.train()
        for inputs, labels in train_data:
            inputs, labels = inputs.to(self.device), labels.to(self.device)
            self.optimizer.zero_grad()
            self.criteria(self(inputs), labels).backward()
            self.optimizer.step()
`;

const withPrefill = readdirSync(PROMPTS_DIR)
  .filter((file) => /^design-v\d+\.reply\.md$/.test(file))
  .map((file) => file.replace(/\.reply\.md$/, ''));

test('there are prefilled design templates to check', () => assert.ok(withPrefill.length >= 2, withPrefill.join(', ')));

for (const name of withPrefill) {
  test(`${name}: the prefilled contract header, finished minimally, validates`, async () => {
    const reply = loadPromptTemplate(name).reply!;
    const config = buildConfig('demo', { dataset: SMALL.dataset });
    const header = renderTemplate(reply, designValues(taskFromConfig(config))).replace(/^```python\n/, '');
    const code = header.trimEnd() + LAYERS_AND_FORWARD + (/def learn\(/.test(header) ? '' : TRAINING_METHODS);
    const outcome = await runSandbox(buildRequest('validate', code, SMALL, settingsFromEnv({})));
    assert.equal(outcome.ok, true, `${JSON.stringify(outcome.failure)}\n${code}`);
  });
}

// A LEMUR-style seed: helper blocks and a constant before Net, its own training methods, an
// import only those used. Fitted to a header it must still validate (src/core/header-fit.ts).
const LEMUR_STYLE = `import torch
import torch.nn as nn
import torch.optim as optim
import math


WIDTH = 8


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)) * math.sqrt(1.0)


def supported_hyperparameters():
    return {'lr', 'momentum'}


class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super(Net, self).__init__()
        self.device = device
        self.stem = nn.Conv2d(in_shape[1], WIDTH, 3, padding=1)
        self.block = Block(WIDTH)
        self.head = nn.Linear(WIDTH, out_shape[0])

    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean((2, 3)))

    def train_setup(self, prm):
        self.to(self.device)
        self.criteria = (nn.CrossEntropyLoss(),)
        self.optimizer = optim.SGD(self.parameters(), lr=prm['lr'], momentum=prm['momentum'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            self.criteria[0](self(inputs), labels).backward()
            self.optimizer.step()
`;

for (const name of withPrefill) {
  test(`${name}: a LEMUR-style seed fitted to the header validates`, async () => {
    const config = buildConfig('demo', { dataset: SMALL.dataset });
    const header = renderTemplate(loadPromptTemplate(name).reply!, designValues(taskFromConfig(config))).replace(/^```python\n/, '');
    const fit = fitToHeader(LEMUR_STYLE, header);
    assert.ok(fit.ok && fit.rewritten, JSON.stringify(fit));
    const outcome = await runSandbox(buildRequest('validate', fit.code, SMALL, settingsFromEnv({})));
    assert.equal(outcome.ok, true, `${JSON.stringify(outcome.failure)}\n${fit.code}`);
  });
}
