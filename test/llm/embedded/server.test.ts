/**
 * Against the real embedded server (src/llm/embedded, llama.cpp) and the real LoRA trainer,
 * on a tiny random llama with SmolLM2's tokenizer, built twice (transformers checkpoint for
 * the trainer, GGUF for the server; python/archloop/llm/synthetic.py): n choices per request,
 * seeds, the prefilled reply, greedy output equal to transformers' (template, tokenizer and
 * the GGUF conversion agree), fine-tune → kill → resume → publish → the served adapter equal
 * to PEFT's, adapters only from the artifacts directory, and a client that goes away.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createFineTuneActivities } from '../../../src/activities/finetune';
import { buildConfig } from '../../../src/core/config';
import { chatMessages, promptMessages, renderDesignPrompt, taskFromConfig } from '../../../src/core/prompts';
import type { CorpusRow } from '../../../src/db/corpus';
import { chatTemplate } from '../../../src/llm/embedded/chat';
import { buildPairSet } from '../../../src/llm/finetune-pairs';
import { loadPromptTemplate } from '../../../src/llm/prompt-files';
import { createPublishActivities } from '../../../src/activities/publish';
import { LlmClient, type SampledChoice, type SampleRequest } from '../../../src/llm/client';
import { LlmError } from '../../../src/llm/errors';
import { PYTHON_SRC, pythonBin, REPO_ROOT } from '../../../src/env';
import { createTestDatabase, type TestDatabase } from '../../helpers/db';
import { adapterById } from '../../../src/db/adapters';
import { activityEnv, insertRun, insertSeed, markChecked, NET, runActivity } from '../support';

const run = promisify(execFile);
const pyEnv = { ...process.env, PYTHONPATH: PYTHON_SRC, OMP_NUM_THREADS: '1' };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function python(args: string[]): string {
  const result = spawnSync(pythonBin(), args, { env: pyEnv, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`python ${args.join(' ')} failed: ${result.stderr.slice(-3000)}`);
  return result.stdout;
}

interface Served {
  url: string;
  process: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

async function startServer(model: string, servedName: string, adaptersRoot: string): Promise<Served> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'src/llm/embedded/main.ts'), '--model', model, '--served-name', servedName, '--port', String(port), '--threads', '1', '--parallel', '3', '--context', '1024', '--adapters-root', adaptersRoot],
    { env: pyEnv, cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-20_000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}`);
    if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error(`server not healthy after 120 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return {
    url: `${base}/v1`,
    process: child,
    log: () => stderr,
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

/** Async: a blocked event loop would leave undici a keep-alive socket the server has closed meanwhile. */
async function pythonAsync(args: string[]): Promise<string> {
  const { stdout } = await run(pythonBin(), args, { env: pyEnv, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** transformers' greedy continuation of one user message (with an optional PEFT adapter). */
async function transformersGreedy(modelDir: string, text: string, tokens: number, adapter?: string): Promise<string> {
  const script = `
import json, sys, torch
from transformers import AutoTokenizer, AutoModelForCausalLM
t = AutoTokenizer.from_pretrained(sys.argv[1]); m = AutoModelForCausalLM.from_pretrained(sys.argv[1])
if sys.argv[4]:
    from peft import PeftModel
    m = PeftModel.from_pretrained(m, sys.argv[4])
ids = t.apply_chat_template([{"role": "user", "content": sys.argv[2]}], add_generation_prompt=True, return_tensors="pt")
ids = ids if torch.is_tensor(ids) else ids["input_ids"]
out = m.generate(input_ids=ids, max_new_tokens=int(sys.argv[3]), do_sample=False)
print(json.dumps(t.decode(out[0, ids.shape[1]:], skip_special_tokens=True)))`;
  return JSON.parse((await pythonAsync(['-c', script, modelDir, text, String(tokens), adapter ?? ''])).trim().split('\n').pop()!);
}

const greedy = { temperature: 0, topP: 1, topK: 0, maxTokens: 8 };
const hello = [{ role: 'user' as const, content: 'Hello there, how are you?' }];

describe('embedded llama.cpp server on a tiny model', () => {
  let tmp: string;
  let hfDir: string;
  let gguf: string;
  let artifacts: string;
  let server: Served;
  let db: TestDatabase;

  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'archloop-embedded-'));
    artifacts = path.join(tmp, 'artifacts');
    mkdirSync(artifacts);
    process.env.ARCHLOOP_ARTIFACTS = artifacts;
    process.env.ARCHLOOP_SEED_CACHE = path.join(tmp, 'seed-cache');
    const smollm = JSON.parse(python(['-m', 'archloop.llm.weights', 'fetch', 'smollm2-135m-instruct']).trim()).path as string;
    const built = python(['-c', 'import sys, json; from pathlib import Path; from archloop.llm.synthetic import save_tiny_gguf_pair as s; print(json.dumps([str(p) for p in s(Path(sys.argv[1]), Path(sys.argv[2]))]))', tmp, smollm]);
    [hfDir, gguf] = JSON.parse(built.trim().split('\n').pop()!) as [string, string];
    server = await startServer(gguf, 'tiny', artifacts);
    db = await createTestDatabase();
  });
  after(async () => {
    if (process.env.ARCHLOOP_TEST_SERVER_LOG) console.error(server?.log());
    await server?.stop();
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
    delete process.env.ARCHLOOP_ARTIFACTS;
    delete process.env.ARCHLOOP_SEED_CACHE;
  });

  test('n choices in one request, usage per choice; the same seed gives the same samples', async () => {
    const client = clientFor(server.url);
    assert.deepEqual(await client.listModels(), ['tiny']);
    const request: SampleRequest = { model: 'tiny', messages: hello, count: 5, params: { temperature: 0.9, topP: 0.95, topK: 100, maxTokens: 12 }, seed: 7 };
    const choices = await sampleAll(client, request);
    assert.equal(choices.length, 5, 'more choices than sequences (3) come in waves');
    for (const choice of choices) {
      assert.ok(choice.text.length > 0);
      assert.ok(['length', 'stop'].includes(choice.finishReason ?? ''));
      assert.equal(choice.usage.choicesInRequest, 5);
      assert.ok(choice.usage.promptTokens! > 10);
    }
    assert.ok(new Set(choices.map((c) => c.text)).size > 1, 'samples at temperature 0.9 differ');
    assert.deepEqual((await sampleAll(client, request)).map((c) => c.text), choices.map((c) => c.text));
  });

  test("the first greedy token equals transformers' on the same checkpoint (template, tokenizer, GGUF weights)", async () => {
    // One token: later ones may flip between near-equal logits (llama.cpp keeps its KV cache in f16).
    const [choice] = await sampleAll(clientFor(server.url), { model: 'tiny', messages: hello, count: 1, params: { ...greedy, maxTokens: 1 } });
    assert.equal(choice!.text, await transformersGreedy(hfDir, hello[0]!.content, 1));
  });

  test('a prefilled reply is continued, and the client returns the whole reply', async () => {
    const prefill = '```python\nimport torch\n';
    const [choice] = await sampleAll(clientFor(server.url), { model: 'tiny', messages: hello, count: 1, params: greedy, prefill });
    assert.ok(choice!.text.startsWith(prefill));
    assert.ok(choice!.text.length > prefill.length);
    const bad = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: hello, continue_final_message: true }),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /add_generation_prompt to be false/);
  });

  test('/health names the process; a second server on a taken port exits with a clear message', async () => {
    const health = (await (await fetch(new URL('/health', server.url))).json()) as { pid?: number; model?: string };
    assert.deepEqual([health.pid, health.model], [server.process.pid, 'tiny']);
    const port = new URL(server.url).port;
    const second = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/llm/embedded/main.ts'), '--model', gguf, '--served-name', 'tiny', '--port', port, '--threads', '1', '--parallel', '1', '--context', '256', '--adapters-root', artifacts], { env: pyEnv, cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(second.status, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  });

  test('a fine-tune pair shows the model the tokens of its sampling request, then the completion and the end of the turn', async () => {
    const seed: CorpusRow = { id: 1, source: 'lemur', name: 'TinyNet', code: readFileSync(path.join(REPO_ROOT, 'test/fixtures/lemur-wheel/ab/nn/nn/TinyNet.py'), 'utf8'), dataset: 'cifar10', accuracy: 0.5, run_id: null, cycle: null, prompt_hash: null, prompt_body: null, design_messages: null };
    const config = buildConfig('demo', {});
    const set = buildPairSet([seed], config, loadPromptTemplate(config.prompt.template), { runId: '', cycle: 0 });
    const pair = set.pairs[0]!;
    // The sampling request for the same program, as the loop sends it (src/activities/sample.ts).
    const design = renderDesignPrompt(loadPromptTemplate(config.prompt.template), taskFromConfig(config), undefined, { prefill: config.prompt.prefill });
    assert.deepEqual(pair.messages, promptMessages(design));
    const [choice] = await sampleAll(clientFor(server.url), { model: 'tiny', messages: chatMessages(design.body), prefill: design.prefill, count: 1, params: { ...greedy, maxTokens: 1 } });
    // What the server renders (the GGUF's template through src/llm/embedded/chat.ts) and what the trainer renders and tokenizes.
    const { readGgufFileInfo } = await import('node-llama-cpp'); // ESM with top-level await: imported as the engine does
    const template = (await readGgufFileInfo(gguf)).metadata.tokenizer.chat_template as string;
    const served = chatTemplate(template, { bos: '', eos: '' }).render(pair.messages, { continueFinal: true });
    const script = `
import json, sys
from transformers import AutoTokenizer
from archloop.lora.data import render_prompt, tokenize_pair
t = AutoTokenizer.from_pretrained(sys.argv[1]); pair = json.loads(sys.argv[2])
row = tokenize_pair(t, pair)
learned = [i for i, label in zip(row["input_ids"], row["labels"]) if label != -100]
print(json.dumps({"prompt": render_prompt(t, pair["messages"]), "promptTokens": row["labels"].count(-100),
                  "merged": len(t(render_prompt(t, pair["messages"]) + pair["completion"], add_special_tokens=False)["input_ids"]) - len(row["input_ids"]),
                  "learned": t.decode(learned)}))`;
    const trained = JSON.parse((await pythonAsync(['-c', script, hfDir, JSON.stringify(pair)])).trim().split('\n').pop()!) as { prompt: string; promptTokens: number; merged: number; learned: string };
    assert.equal(trained.prompt, served, 'the trainer renders the request exactly as the server does');
    assert.equal(trained.promptTokens, choice!.usage.promptTokens, 'and as many prompt tokens as llama.cpp counts');
    assert.equal(trained.learned, `${pair.completion}<|im_end|>\n`, 'the loss covers the completion, then the end of the turn');
    assert.ok(trained.merged < 0, 'tokenized as one text, BPE would merge across the prefill boundary: why prompt and completion are tokenized apart');
  });

  test('a wrong model name is a clear error listing what is served', async () => {
    await assert.rejects(
      sampleAll(clientFor(server.url), { model: 'gpt-9', messages: hello, count: 1, params: greedy }),
      (error: unknown) => error instanceof LlmError && error.kind === 'unknown-model' && /serves: tiny/.test(error.message),
    );
  });

  test('a client that goes away stops its generation; the next request is served at once', async () => {
    const controller = new AbortController();
    const long = fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: hello, n: 3, max_tokens: 900, temperature: 1 }),
      signal: controller.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
    await assert.rejects(long);
    const started = Date.now();
    await sampleAll(clientFor(server.url), { model: 'tiny', messages: hello, count: 3, params: greedy });
    assert.ok(Date.now() - started < 20_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.match(server.log(), /request abandoned/);
  });

  test('fine-tune → kill → resume → publish; the served adapter answers as PEFT does; adapters load only from the artifacts directory', async () => {
    await insertRun(db.pool, 'run-lora', {
      llm: { baseUrl: server.url, model: 'tiny' },
      prompt: { template: 'design-v2' },
      lora: { baseModel: hfDir, r: 4, alpha: 8, lr: 0.05, epochs: 2, batchSize: 1, maxSeqLen: 2048, checkpointEvery: 2, maxPairs: 4, maxSteps: 0, seedMaxSteps: 0 },
    });
    for (const width of [8, 16, 24, 32]) {
      const id = await insertSeed(db.pool, `Seed${width}`, NET(width), 0.5, 'fashion-mnist');
      await markChecked(db.pool, id, 'fashion-mnist/1x28x28/params<=2000000/flops<=200000000', true);
    }
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

    const retrySteps: unknown[] = [];
    const result = await runActivity(activityEnv(retrySteps), fineTuneLora, input);
    const progress = (retrySteps as any[]).filter((d) => typeof d?.step === 'number').map((d) => d.step as number);
    assert.ok(progress[0]! >= 3, `resumed at step ${progress[0]}, expected after the checkpoint`);
    assert.deepEqual([result.steps, result.pairs], [8, 4]);
    const trained = (await adapterById(db.pool, result.adapterId))!;
    assert.equal(trained.status, 'ready');

    const { publishAdapter } = createPublishActivities({ pool: db.pool });
    const { model } = await runActivity(activityEnv(), publishAdapter, { adapterId: result.adapterId });
    assert.equal(model, 'archloop-run-lora-cycle-0');
    assert.deepEqual(await activityEnv().run(publishAdapter, { adapterId: result.adapterId }), { model }, 'already loaded is fine');
    assert.ok(existsSync(path.join(trained.path, 'adapter.gguf')), 'converted once, cached beside the PEFT adapter');

    const client = clientFor(server.url);
    const [base] = await sampleAll(client, { model: 'tiny', messages: hello, count: 1, params: greedy });
    const [tuned] = await sampleAll(client, { model, messages: hello, count: 1, params: greedy });
    assert.notEqual(tuned!.text, base!.text);
    const [firstToken] = await sampleAll(client, { model, messages: hello, count: 1, params: { ...greedy, maxTokens: 1 } });
    assert.equal(firstToken!.text, await transformersGreedy(hfDir, hello[0]!.content, 1, trained.path), 'the converted adapter acts as PEFT does');

    const outside = await fetch(`${server.url}/load_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: 'sneaky', lora_path: hfDir }),
    });
    assert.equal(outside.status, 400);
    assert.match(await outside.text(), /adapters load only from/);
    const unloaded = await fetch(`${server.url}/unload_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: model }),
    });
    assert.equal(unloaded.status, 200);
    assert.deepEqual(await client.listModels(), ['tiny']);
  });

  test('a missing base model is a non-retryable trainer error', async () => {
    await insertRun(db.pool, 'run-nobase', { lora: { baseModel: path.join(tmp, 'no-such-model') } }, [0]);
    const id = await insertSeed(db.pool, 'Lone', NET(4), 0.5, 'fashion-mnist');
    await markChecked(db.pool, id, 'fashion-mnist/1x28x28/params<=2000000/flops<=200000000', true);
    const { fineTuneLora } = createFineTuneActivities({ pool: db.pool });
    await assert.rejects(activityEnv().run(fineTuneLora, { runId: 'run-nobase', cycle: 0, previousAdapterId: null }), (error: any) => {
      assert.deepEqual([error.type, error.nonRetryable], ['missing-base-model', true]);
      assert.match(error.message, /no-such-model/);
      return true;
    });
  });
});
