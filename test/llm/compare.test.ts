/**
 * `archloop compare` but for the models: a scripted endpoint plays two models, the real
 * sandbox validates, repairs go back as a run sends them, and the comparison pairs sample i
 * of both sides (same prompt, same seed), tests them with exact McNemar, and counts novel
 * valid programs (a copy of the corpus or of an earlier sample is valid but not novel).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { resolveSide } from '../../src/cli/compare';
import { buildConfig } from '../../src/core/config';
import { renderDesignPrompt, taskFromConfig } from '../../src/core/prompts';
import { compareModels } from '../../src/llm/compare';
import { llmClientFromConfig } from '../../src/llm/from-config';
import { loadPromptTemplate } from '../../src/llm/prompt-files';
import { SMALL } from '../sandbox/helpers';
import { completion, startFakeServer, type FakeServer } from './fake-server';

const body = (width: number) => `
        self.body = nn.Sequential(nn.Conv2d(in_channels, ${width}, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(${width}, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))
`;
const flattenBug = (width: number) => body(width).replace(`nn.Linear(${width}, num_classes)`, `nn.Linear(${width} * 32 * 32, num_classes)`);
const DIFFERENT = `
        self.a = nn.Conv2d(in_channels, 12, 5, padding=2)
        self.b = nn.BatchNorm2d(12)
        self.c = nn.Conv2d(12, 24, 3, stride=2)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x):
        x = torch.relu(self.b(self.a(x)))
        x = torch.relu(self.c(x)).mean((2, 3))
        return self.fc(x)
`;

// Three more programs unlike each other and the rest (numbers are normalized away, so they differ in layers).
const OTHERS = [
  `\n        self.s = nn.Sequential(nn.Conv2d(in_channels, 16, 3), nn.GELU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.GELU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, num_classes))\n\n    def forward(self, x):\n        return self.s(x)\n`,
  `\n        self.stem = nn.Conv2d(in_channels, 6, 1)\n        self.mix = nn.Conv2d(6, 6, 3, padding=1, groups=6)\n        self.norm = nn.GroupNorm(2, 6)\n        self.out = nn.Linear(6, num_classes)\n\n    def forward(self, x):\n        y = self.stem(x)\n        y = y + torch.sigmoid(self.norm(self.mix(y)))\n        return self.out(y.amax(dim=(2, 3)))\n`,
  `\n        self.pool = nn.AvgPool2d(4)\n        self.lin1 = nn.LazyLinear(64)\n        self.act = nn.SiLU()\n        self.lin2 = nn.Linear(64, num_classes)\n\n    def forward(self, x):\n        return self.lin2(self.act(self.lin1(self.pool(x).reshape(x.shape[0], -1))))\n`,
];

let server: FakeServer;
let seedCache: string;

before(async () => {
  server = await startFakeServer((request) => {
    if (request.path === '/v1/models') return { status: 200, body: { object: 'list', data: [{ id: 'base' }, { id: 'tuned' }] } };
    if (request.path === '/v1/load_lora_adapter') return { status: 404 };
    const n = request.body.n ?? 1;
    if (request.body.max_tokens === 1) return { status: 200, body: completion(Array(n).fill('OK')) };
    const user = request.body.messages[0].content as string;
    if (user.includes('It fails:')) return { status: 200, body: completion([body(8)]) };
    // base: a flatten error in every sample; tuned: valid, the same program twice, then others.
    const replies = request.body.model === 'base' ? Array.from({ length: n }, (_, i) => flattenBug(8 + i)) : [body(8), body(8), DIFFERENT, ...OTHERS];
    return { status: 200, body: completion(replies.slice(0, n)) };
  });
  seedCache = mkdtempSync(path.join(tmpdir(), 'archloop-seed-cache-'));
  process.env.ARCHLOOP_SEED_CACHE = seedCache;
});
after(async () => {
  await server?.close();
  rmSync(seedCache, { recursive: true, force: true });
  delete process.env.ARCHLOOP_SEED_CACHE;
});

test('paired by sample: first-attempt validity with exact McNemar, after repair, novel-valid; the same prompts and seeds on both sides', async () => {
  const config = buildConfig('demo', { ...SMALL, llm: { baseUrl: server.url, model: 'base', maxRetries: 0 }, sampling: { repairAttempts: 1 }, prompt: { includeReference: false } });
  const prompt = renderDesignPrompt(loadPromptTemplate(config.prompt.template), taskFromConfig(config), undefined, { prefill: true });
  const corpus = [{ code: `${prompt.prefill.replace(/^```python\n/, '')}${DIFFERENT.slice(1)}`, structural_hash: null }];
  const client = llmClientFromConfig(config);
  const c = await compareModels(config, { label: 'base', model: 'base' }, { label: 'tuned', model: 'tuned' }, { a: client, b: client }, { samples: 6, batch: 6, seed: 77, promptFor: () => prompt, corpus });

  assert.deepEqual([c.firstAttempt.n, c.firstAttempt.a.successes, c.firstAttempt.b.successes, c.firstAttempt.bOnly, c.firstAttempt.aOnly], [6, 0, 6, 6, 0]);
  assert.ok(Math.abs(c.firstAttempt.pValue - 2 / 64) < 1e-12);
  assert.equal(c.firstAttempt.verdict, 'better');
  assert.deepEqual([c.afterRepair.a.successes, c.afterRepair.b.successes, c.afterRepair.verdict], [6, 6, 'not distinguishable']);
  // tuned: sample 1 repeats sample 0 and sample 2 copies the corpus: 4 of 6 novel. base: every repair writes the same program: 1.
  assert.deepEqual(c.b.perSample.map((s) => s.novel), [true, false, false, true, true, true]);
  assert.deepEqual([c.a.novelValid.successes, c.b.novelValid.successes], [1, 4]);
  assert.deepEqual(c.dominantFailure, { failureClass: 'forward', a: 6, b: 0 });
  const sampling = server.requests.filter((r) => r.path === '/v1/chat/completions' && r.body.max_tokens !== 1 && !r.body.messages[0].content.includes('It fails:'));
  assert.deepEqual(sampling.map((r) => [r.body.model, r.body.seed]), [['base', 77], ['tuned', 77]], 'one request per side, the same seed');
  assert.equal(sampling[0]!.body.messages[0].content, sampling[1]!.body.messages[0].content, 'the same prompt');
});

test('an adapter that does not exist: a clear error that lists what there is', async () => {
  mkdirSync(path.join(seedCache, 'abc123', 'lora', 'adapter'), { recursive: true });
  writeFileSync(path.join(seedCache, 'abc123', 'lora', 'adapter', 'manifest.json'), '{}');
  const config = buildConfig('demo', { llm: { baseUrl: server.url, model: 'base' } });
  assert.deepEqual(await resolveSide('base', config, ['base', 'tuned']), { label: 'base', model: 'base' });
  assert.deepEqual(await resolveSide('tuned', config, ['base', 'tuned']), { label: 'tuned', model: 'tuned' });
  await assert.rejects(resolveSide('nope', config, ['base', 'tuned']), /no adapter "nope"\. The endpoint serves: base, tuned; cached seed adapters: abc123; or give base, seed, or a PEFT adapter directory/);
  await assert.rejects(resolveSide('./missing-dir', config, ['base']), /no PEFT adapter at .*missing-dir/);
});
