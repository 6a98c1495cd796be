/**
 * `archloop preflight` end to end but for the model: a scripted OpenAI-compatible endpoint
 * answers the run's own prompt (design-v3, prefilled), the real sandbox validates each
 * program, failures go back through repair, and the report counts what a user reads:
 * first-attempt and after-repair validity, failure classes, tokens, the cycle estimate and
 * the saved attempts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildConfig } from '../../src/core/config';
import { renderDesignPrompt, taskFromConfig } from '../../src/core/prompts';
import { llmClientFromConfig } from '../../src/llm/from-config';
import { runPreflight } from '../../src/llm/preflight';
import { loadPromptTemplate } from '../../src/llm/prompt-files';
import { SMALL } from '../sandbox/helpers';
import { completion, startFakeServer, type FakeServer } from './fake-server';

// What the model writes after design-v3's prefill (which ends inside __init__).
const GOOD = `
        self.body = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))
`;
const FLATTEN_BUG = GOOD.replace('nn.Linear(8, num_classes)', 'nn.Linear(8 * 32 * 32, num_classes)');
const NO_FORWARD = '\n        self.head = nn.Linear(in_channels, num_classes)\n';

let server: FakeServer;
let replies: string[] = [];

before(async () => {
  server = await startFakeServer((request) => {
    if (request.path === '/v1/models') return { status: 200, body: { object: 'list', data: [{ id: 'm' }] } };
    if (request.path === '/v1/load_lora_adapter') return { status: 404 };
    const n = request.body.n ?? 1;
    if (request.body.max_tokens === 1) return { status: 200, body: completion(Array(n).fill('OK')) }; // the capability probe
    // Repairs run concurrently: answer each by the failure it reports, not by arrival order.
    const user = request.body.messages[0].content as string;
    if (user.includes('It fails: the forward pass fails')) return { status: 200, body: completion([GOOD]) };
    if (user.includes('It fails: the required interface is not met')) return { status: 200, body: completion([NO_FORWARD]) };
    return { status: 200, body: completion(replies.splice(0, n)) };
  });
});
after(() => server?.close());

test('first attempt and after repair, failure classes, tokens and saved attempts', async () => {
  const config = buildConfig('demo', {
    ...SMALL,
    llm: { baseUrl: server.url, model: 'm', maxRetries: 0 },
    sampling: { samplesPerActivity: 3, repairAttempts: 1 },
    prompt: { template: 'design-v3', includeReference: false },
  });
  const prompt = renderDesignPrompt(loadPromptTemplate(config.prompt.template), taskFromConfig(config), undefined, { prefill: config.prompt.prefill });
  // Three samples: valid; a flatten-size error the repair fixes; no forward, repaired unchanged.
  const prefill = prompt.prefill;
  replies = [GOOD, FLATTEN_BUG, NO_FORWARD];
  const saveDir = mkdtempSync(path.join(tmpdir(), 'archloop-preflight-'));
  const report = await runPreflight(config, prompt, llmClientFromConfig(config), { samples: 3, saveDir });

  assert.equal(report.samples, 3);
  assert.equal(report.validFirst, 1);
  assert.deepEqual(report.failureClasses, { forward: 1, contract: 1 });
  assert.equal(report.repairs, 2);
  assert.equal(report.validAfterRepair, 2, JSON.stringify(report.perSample));
  assert.deepEqual(report.failureClassesAfterRepair, { unchanged: 1 });
  assert.deepEqual(report.perSample.map((s) => [s.validFirst, s.valid, s.firstFailure, s.finalFailure]), [
    [true, true, null, null],
    [false, true, 'forward', null],
    [false, false, 'contract', 'unchanged'],
  ]);
  assert.equal(report.completionTokens, 10 * 3 + 10 * 2, 'the fake reports 10 tokens a choice');
  assert.ok(report.tokensPerS! > 0 && report.secondsPerValid! > 0);
  assert.equal(report.cycleEstimateS.trainingUpperBound, (2 / 3) * config.sampling.samplesPerCycle * config.training.timeLimitS);

  // The repair request carried the diagnosis of the flatten error, with the exact size.
  const repairBodies = server.requests.filter((r) => r.body?.messages?.[0]?.content?.includes('It fails:')).map((r) => r.body.messages[0].content as string);
  assert.equal(repairBodies.length, 2);
  assert.ok(repairBodies.some((body) => /construct it as `nn\.Linear\(8, …\)`/.test(body)), repairBodies.join('\n---\n'));
  const sampling = server.requests.filter((r) => r.path === '/v1/chat/completions' && r.body.max_tokens !== 1);
  assert.equal(sampling.length, 1 + 2);
  assert.ok(prefill && sampling.every((r) => r.body.messages.at(-1).role === 'assistant' && r.body.messages.at(-1).content === prefill), 'every design and repair request is prefilled');

  const saved = readdirSync(saveDir).sort();
  assert.deepEqual(saved, ['sample-0-attempt-0.md', 'sample-1-attempt-0.md', 'sample-1-attempt-1.md', 'sample-2-attempt-0.md']);
  assert.match(readFileSync(path.join(saveDir, 'sample-1-attempt-0.md'), 'utf8'), /^<!-- forward: .*mat1 and mat2 shapes/);
  assert.match(readFileSync(path.join(saveDir, 'sample-1-attempt-1.md'), 'utf8'), /^<!-- valid -->/);
});
