/**
 * Against the real embedded server (python -m archloop.llm.server) and the real LoRA
 * trainer: short generations with n > 1 from SmolLM2-135M, then, on a tiny random-weight
 * model (fast on 2 cores), fine-tune → kill → resume → publish → sample from the adapter.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createFineTuneActivities } from '../../src/activities/finetune';
import { createPublishActivities } from '../../src/activities/publish';
import { LlmClient, type SampledChoice, type SampleRequest } from '../../src/llm/client';
import { LlmError } from '../../src/llm/errors';
import { PYTHON_SRC, pythonBin, stateDir } from '../../src/env';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { activityEnv, insertRun, insertSeed, NET, runActivity } from './support';

const SERVER_MODULE = path.join(PYTHON_SRC, 'archloop', 'llm', 'server.py');
const TRAINER_MODULE = path.join(PYTHON_SRC, 'archloop', 'llm', 'lora.py');
const missing = !existsSync(SERVER_MODULE) || !existsSync(TRAINER_MODULE) ? 'the Python LLM modules are not there yet' : false;
const pyEnv = { ...process.env, PYTHONPATH: PYTHON_SRC };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function python(args: string[]): string {
  const result = spawnSync(pythonBin(), args, { env: pyEnv, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python ${args.join(' ')} failed: ${result.stderr.slice(-2000)}`);
  return result.stdout;
}

interface Served {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(modelDir: string, servedName: string): Promise<Served> {
  const port = await freePort();
  const child = spawn(pythonBin(), ['-m', 'archloop.llm.server', '--host', '127.0.0.1', '--port', String(port), '--model-dir', modelDir, '--served-name', servedName, '--threads', '2'], {
    env: pyEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-3000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}`);
    const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`server not healthy after 180 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return {
    url: `${base}/v1`,
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function clientFor(url: string): LlmClient {
  return new LlmClient({
    endpoint: { baseUrl: url, apiKey: 'EMPTY', apiKeySet: false, keyDescription: 'no key' },
    timeoutMs: 120_000,
    retry: { retries: 1, baseDelayMs: 100, maxDelayMs: 200 },
    supportsN: true,
  });
}

async function sampleAll(client: LlmClient, request: SampleRequest): Promise<SampledChoice[]> {
  const all: SampledChoice[] = [];
  for await (const batch of client.sample(request)) all.push(...batch);
  return all;
}

describe('embedded server: SmolLM2-135M', { skip: missing }, () => {
  let server: Served;
  before(async () => {
    const modelDir = path.join(stateDir(), 'models', 'smollm2-135m-instruct');
    python(['-m', 'archloop.llm.prepare_model', '--out', modelDir]);
    server = await startServer(modelDir, 'smollm2-135m-instruct');
  });
  after(async () => server?.stop());

  test('short generations with n = 3 in one request, usage per choice', async () => {
    const client = clientFor(server.url);
    assert.ok((await client.listModels()).includes('smollm2-135m-instruct'));
    const choices = await sampleAll(client, {
      model: 'smollm2-135m-instruct',
      messages: [{ role: 'user', content: 'Write a PyTorch class Net with one Conv2d layer.' }],
      count: 3,
      params: { temperature: 0.7, topP: 0.95, topK: 100, maxTokens: 16 },
      seed: 7,
    });
    assert.equal(choices.length, 3);
    for (const choice of choices) {
      assert.ok(choice.text.length > 0);
      assert.ok(['length', 'stop'].includes(choice.finishReason ?? ''));
      assert.equal(choice.usage.choicesInRequest, 3);
      assert.ok(choice.usage.promptTokens! > 10);
      assert.ok(choice.usage.completionTokens! > 0);
    }
    assert.ok(choices[0]!.usage.requestCompletionTokens! <= 48);
    assert.ok(new Set(choices.map((c) => c.text)).size > 1, 'n samples at temperature 0.7 should differ');
  });

  test('a wrong model name is a clear error listing what is served', async () => {
    await assert.rejects(
      sampleAll(clientFor(server.url), { model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }], count: 1, params: { temperature: 0.7, topP: 0.95, topK: 0, maxTokens: 4 } }),
      (error: unknown) => error instanceof LlmError && error.kind === 'unknown-model' && /serves: smollm2-135m-instruct/.test(error.message),
    );
  });
});

describe('LoRA fine-tune, resume and publish on a tiny model', { skip: missing }, () => {
  let db: TestDatabase;
  let tmp: string;
  let server: Served;
  let tinyDir: string;

  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'archloop-lora-'));
    process.env.ARCHLOOP_ARTIFACTS = path.join(tmp, 'artifacts');
    tinyDir = path.join(tmp, 'tiny');
    python(['-c', 'import sys; from pathlib import Path; from archloop.llm.synthetic import save_synthetic; save_synthetic(Path(sys.argv[1]))', tinyDir]);
    server = await startServer(tinyDir, 'tiny');
    db = await createTestDatabase();
    await insertRun(db.pool, 'run-lora', {
      llm: { baseUrl: server.url, model: 'tiny' },
      lora: { baseModel: tinyDir, r: 4, alpha: 8, lr: 0.02, epochs: 3, batchSize: 1, maxSeqLen: 2048, checkpointEvery: 2, maxPairs: 4, maxSteps: 0 },
    });
    for (const width of [8, 16, 24, 32]) await insertSeed(db.pool, `Seed${width}`, NET(width), 0.5);
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
    delete process.env.ARCHLOOP_ARTIFACTS;
  });

  test('a killed fine-tune resumes from its checkpoint; the adapter is published and changes the output', async () => {
    const { fineTuneLora } = createFineTuneActivities({ pool: db.pool });
    const input = { runId: 'run-lora', cycle: 0, previousAdapterId: null };

    // First attempt: cancelled (the trainer is killed) once it is past its first checkpoint.
    const first = activityEnv();
    const firstSteps: number[] = [];
    first.on('heartbeat', (details: any) => {
      if (typeof details?.step === 'number') firstSteps.push(details.step);
      if (details?.step >= 3) first.cancel();
    });
    await assert.rejects(first.run(fineTuneLora, input), /trainer was killed by SIGTERM/);
    assert.ok(Math.max(...firstSteps) >= 3);

    // The retry: same job, same outputDir → the trainer continues from the step-2 checkpoint or later.
    const retrySteps: number[] = [];
    const result = await runActivity(activityEnv(retrySteps as unknown[]), fineTuneLora, input);
    const progress = (retrySteps as any[]).filter((d) => typeof d?.step === 'number').map((d) => d.step as number);
    assert.ok(progress[0]! >= 3, `resumed at step ${progress[0]}, expected after the checkpoint`);
    assert.deepEqual([result.steps, result.pairs], [12, 4]);
    assert.equal(typeof result.finalLoss, 'number');

    const { rows } = await db.pool.query('SELECT status, data_hash, manifest, path FROM adapters WHERE id = $1', [result.adapterId]);
    assert.equal(rows[0].status, 'ready');
    assert.equal(rows[0].manifest.dataHash, rows[0].data_hash);
    assert.ok(existsSync(rows[0].path));

    // A third call finds the finished adapter and trains nothing.
    const again = await runActivity(activityEnv(), fineTuneLora, input);
    assert.deepEqual(again, result);

    const { publishAdapter } = createPublishActivities({ pool: db.pool });
    const { model } = await runActivity(activityEnv(), publishAdapter, { adapterId: result.adapterId });
    assert.equal(model, 'archloop-run-lora-cycle-0');
    assert.deepEqual(await activityEnv().run(publishAdapter, { adapterId: result.adapterId }), { model }); // already loaded is fine

    const client = clientFor(server.url);
    assert.ok((await client.listModels()).includes(model));
    const greedy = { temperature: 0, topP: 1, topK: 0, maxTokens: 12 };
    const messages = [{ role: 'user' as const, content: 'w1 w2 w3 w4' }];
    const [base] = await sampleAll(client, { model: 'tiny', messages, count: 1, params: greedy, seed: 1 });
    const [tuned] = await sampleAll(client, { model, messages, count: 1, params: greedy, seed: 1 });
    assert.notEqual(tuned!.text, base!.text);
  });

  test('a missing base model is a non-retryable trainer error', async () => {
    await insertRun(db.pool, 'run-nobase', { lora: { baseModel: path.join(tmp, 'no-such-model') } }, [0]);
    const { fineTuneLora } = createFineTuneActivities({ pool: db.pool });
    await assert.rejects(activityEnv().run(fineTuneLora, { runId: 'run-nobase', cycle: 0, previousAdapterId: null }), (error: any) => {
      assert.deepEqual([error.type, error.nonRetryable], ['missing-base-model', true]);
      assert.match(error.message, /no-such-model/);
      return true;
    });
  });
});
