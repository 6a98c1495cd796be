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
