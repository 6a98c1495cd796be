/**
 * gateAdapter against a scripted endpoint and the real sandbox: a new adapter that writes
 * worse programs than the model serving is kept out; one that is not worse is published; a
 * sample too small to decide says "not measured" and never blocks. The verdict is kept in
 * the adapter's manifest.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createGateActivities } from '../../src/activities/gate';
import { adapterById, markAdapterReady, upsertTrainingAdapter } from '../../src/db/adapters';
import { adapterModelName } from '../../src/core/run-id';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { completion, startFakeServer, type FakeServer } from '../llm/fake-server';
import { activityEnv, insertRun, runActivity } from '../llm/support';
import { SMALL } from '../sandbox/helpers';

// Bodies after design-v3's prefill: distinct valid programs (numbers are normalized away, so they differ in layers), and a flatten error.
const VALID = [
  '\n        self.s = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))\n\n    def forward(self, x):\n        return self.s(x)\n',
  '\n        self.s = nn.Sequential(nn.Conv2d(in_channels, 16, 3), nn.GELU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.GELU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, num_classes))\n\n    def forward(self, x):\n        return self.s(x)\n',
  '\n        self.stem = nn.Conv2d(in_channels, 6, 1)\n        self.mix = nn.Conv2d(6, 6, 3, padding=1, groups=6)\n        self.norm = nn.GroupNorm(2, 6)\n        self.out = nn.Linear(6, num_classes)\n\n    def forward(self, x):\n        y = self.stem(x)\n        y = y + torch.sigmoid(self.norm(self.mix(y)))\n        return self.out(y.amax(dim=(2, 3)))\n',
  '\n        self.pool = nn.AvgPool2d(4)\n        self.lin1 = nn.LazyLinear(64)\n        self.act = nn.SiLU()\n        self.lin2 = nn.Linear(64, num_classes)\n\n    def forward(self, x):\n        return self.lin2(self.act(self.lin1(self.pool(x).reshape(x.shape[0], -1))))\n',
  '\n        self.a = nn.Conv2d(in_channels, 12, 5, padding=2)\n        self.b = nn.BatchNorm2d(12)\n        self.c = nn.Conv2d(12, 24, 3, stride=2)\n        self.fc = nn.Linear(24, num_classes)\n\n    def forward(self, x):\n        x = torch.relu(self.b(self.a(x)))\n        x = torch.relu(self.c(x)).mean((2, 3))\n        return self.fc(x)\n',
  '\n        self.q = nn.Conv2d(in_channels, 4, 3, padding=1)\n        self.r = nn.Conv2d(4, 4, 1)\n        self.h = nn.Linear(4, num_classes)\n\n    def forward(self, x):\n        z = torch.tanh(self.q(x))\n        z = z * torch.sigmoid(self.r(z))\n        return self.h(z.mean(dim=(2, 3)))\n',
];
const BROKEN = '\n        self.head = nn.Linear(8 * 32 * 32, num_classes)\n\n    def forward(self, x):\n        return self.head(torch.flatten(x, 1))\n';

let db: TestDatabase;
let server: FakeServer;
let newWrites: 'valid' | 'broken' = 'broken';

before(async () => {
  db = await createTestDatabase();
  server = await startFakeServer((request) => {
    if (request.path === '/v1/models') return { status: 200, body: { object: 'list', data: [{ id: 'serving' }, { id: adapterModelName('gate-run', 1) }] } };
    if (request.path === '/v1/load_lora_adapter') return { status: 200, body: 'ok' };
    const n = request.body.n ?? 1;
    if (request.body.max_tokens === 1) return { status: 200, body: completion(Array(n).fill('OK')) };
    const valid = request.body.model === 'serving' || newWrites === 'valid';
    return { status: 200, body: completion(Array.from({ length: n }, (_, i) => (valid ? VALID[i % VALID.length]! : BROKEN))) };
  });
});
after(async () => {
  await server?.close();
  await db?.drop();
});

async function readyAdapter(runId: string, cycle: number): Promise<number> {
  const adapter = await upsertTrainingAdapter(db.pool, { runId, cycle, path: '/nowhere/adapter', baseModel: 'b', parentId: null, dataHash: `d-${runId}-${cycle}` });
  await markAdapterReady(db.pool, adapter.id, '/nowhere/adapter', { steps: 1 });
  return adapter.id;
}

test('worse on novel valid designs: kept out; not worse: published; the verdict is in the manifest', async () => {
  const overrides = { ...SMALL, llm: { baseUrl: server.url, model: 'serving', maxRetries: 0 }, prompt: { includeReference: false }, sampling: { samplesPerActivity: 6 }, lora: { gate: { samples: 6 } } };
  await insertRun(db.pool, 'gate-run', overrides);
  const adapterId = await readyAdapter('gate-run', 1);
  const { gateAdapter } = createGateActivities({ pool: db.pool });
  const input = { runId: 'gate-run', cycle: 1, adapterId, servingModel: 'serving' };

  const rejected = await runActivity(activityEnv(), gateAdapter, input);
  assert.deepEqual([rejected.decision, rejected.measured], ['keep-serving', true]);
  assert.match(rejected.reason, /^worse than serving: novel and valid 6\/6 serving → 0\/6 new, better on 0, worse on 6, exact McNemar p = 0\.031/);
  assert.equal(((await adapterById(db.pool, adapterId))!.manifest.gate as { decision: string }).decision, 'keep-serving');

  newWrites = 'valid';
  const passed = await runActivity(activityEnv(), gateAdapter, input);
  assert.deepEqual([passed.decision, passed.measured], ['publish', true]);
  assert.match(passed.reason, /^not worse than serving: novel and valid 6\/6 serving → 6\/6 new/);
});

test('a sample too small to decide is "not measured" and publishes', async () => {
  await insertRun(db.pool, 'gate-small', { llm: { baseUrl: server.url, model: 'serving' }, lora: { gate: { samples: 3 } } });
  const adapterId = await readyAdapter('gate-small', 1);
  const { gateAdapter } = createGateActivities({ pool: db.pool });
  const result = await runActivity(activityEnv(), gateAdapter, { runId: 'gate-small', cycle: 1, adapterId, servingModel: 'serving' });
  assert.deepEqual(result, { decision: 'publish', measured: false, reason: 'not measured: 3 paired samples cannot reach p < 0.05 (at least 6 needed)' });
});
