/**
 * The self-seed phase against a scripted endpoint and the real sandbox: the base model's
 * valid programs (repaired ones too) become seed pairs in the sampled form, structural
 * duplicates are dropped, the set is cached (a second build samples nothing), and a run
 * configured to learn from it without it fails with the command to run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildConfig } from '../../src/core/config';
import { loadPairSet, SelfSeedMissing } from '../../src/llm/finetune-pairs';
import { llmClientFromConfig } from '../../src/llm/from-config';
import { buildSelfSeed, cachedSelfSeed, SELF_SEED_BASE } from '../../src/llm/self-seed';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { SMALL } from '../sandbox/helpers';
import { completion, startFakeServer, type FakeServer } from './fake-server';

const GOOD = '\n        self.s = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))\n\n    def forward(self, x):\n        return self.s(x)\n';
const BROKEN = '\n        self.head = nn.Linear(8 * 32 * 32, num_classes)\n\n    def forward(self, x):\n        return self.head(torch.flatten(x, 1))\n';
const FIXED = '\n        self.head = nn.Linear(in_channels, num_classes)\n\n    def forward(self, x):\n        return self.head(x.mean((2, 3)))\n';

let db: TestDatabase;
let server: FakeServer;
let cache: string;

before(async () => {
  db = await createTestDatabase();
  cache = mkdtempSync(path.join(tmpdir(), 'archloop-self-seed-'));
  process.env.ARCHLOOP_SEED_CACHE = cache;
  server = await startFakeServer((request) => {
    if (request.path === '/v1/models') return { status: 200, body: { object: 'list', data: [{ id: 'base' }] } };
    if (request.path === '/v1/load_lora_adapter') return { status: 404 };
    const n = request.body.n ?? 1;
    if (request.body.max_tokens === 1) return { status: 200, body: completion(Array(n).fill('OK')) };
    if ((request.body.messages[0].content as string).includes('It fails:')) return { status: 200, body: completion([FIXED]) };
    // Per batch of 3: valid, the same program again (a structural duplicate), a flatten error the repair fixes.
    return { status: 200, body: completion([GOOD, GOOD, BROKEN].slice(0, n)) };
  });
});
after(async () => {
  await server?.close();
  await db?.drop();
  rmSync(cache, { recursive: true, force: true });
  delete process.env.ARCHLOOP_SEED_CACHE;
});

test('valid and repaired programs become pairs in the sampled form, duplicates dropped; cached; a run without it is told what to run', async () => {
  const config = buildConfig('demo', {
    ...SMALL,
    llm: { baseUrl: server.url, model: 'base', maxRetries: 0 },
    sampling: { samplesPerActivity: 3, repairAttempts: 1 },
    prompt: { includeReference: false },
    lora: { seedFrom: 'self', selfSamples: 3 },
  });
  await assert.rejects(loadPairSet(db.pool, config, '', 0), (error: unknown) => error instanceof SelfSeedMissing && /archloop seed-adapter --preset demo --from self/.test(error.message));

  const set = await buildSelfSeed(db.pool, config, llmClientFromConfig(config));
  assert.deepEqual([set.sampled, set.validFirst, set.validAfterRepair, set.duplicates, set.noFit, set.pairs.length], [3, 2, 3, 1, 0, 2]);
  assert.equal(set.pairs[0]!.messages.at(-1)!.role, 'assistant', 'the prefilled header is the request');
  assert.deepEqual(set.pairs.map((p) => p.completion), [`${GOOD.trimEnd()}\n\`\`\``, `${FIXED.trimEnd()}\n\`\`\``], "what the model wrote after the prefill, then the fence");
  const seeds = server.requests.filter((r) => r.path === '/v1/chat/completions' && r.body.max_tokens !== 1 && !r.body.messages[0].content.includes('It fails:')).map((r) => r.body.seed);
  assert.deepEqual(seeds, [SELF_SEED_BASE], "the self-seed range, which compare's never meets");

  const requests = server.requests.length;
  assert.deepEqual((await buildSelfSeed(db.pool, config, llmClientFromConfig(config))).pairs, set.pairs);
  assert.equal(server.requests.length, requests, 'found in the cache: nothing sampled again');
  assert.equal((await cachedSelfSeed(db.pool, config))?.key, set.key);
  const pairs = await loadPairSet(db.pool, config, '', 0);
  assert.deepEqual(pairs.pairs, set.pairs, 'seedFrom self: the seed fine-tune learns from them alone');
});
