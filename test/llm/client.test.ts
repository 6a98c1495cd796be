/** The sampling client against a local failing HTTP server: retries, backoff and error classes. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { apportionTokens, LlmClient, type SampledChoice, type SampleRequest } from '../../src/llm/client';
import { normalizeBaseUrl } from '../../src/llm/endpoint';
import { LlmError } from '../../src/llm/errors';
import { apiError, completion, startFakeServer, type FakeServer, type Handler } from './fake-server';

const servers: FakeServer[] = [];
after(async () => Promise.all(servers.map((server) => server.close())));

async function serve(handler: Handler): Promise<FakeServer> {
  const server = await startFakeServer(handler);
  servers.push(server);
  return server;
}

function client(url: string, overrides: Partial<ConstructorParameters<typeof LlmClient>[0]> = {}): LlmClient {
  return new LlmClient({
    endpoint: { baseUrl: url, apiKey: 'sk-test', apiKeySet: true, keyDescription: 'the key in $ARCHLOOP_TEST_KEY' },
    timeoutMs: 5000,
    retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 },
    supportsN: true,
    ...overrides,
  });
}

const request: SampleRequest = {
  model: 'test-model',
  messages: [{ role: 'user', content: 'write a net' }],
  count: 3,
  params: { temperature: 0.7, topP: 0.95, topK: 100, maxTokens: 64 },
  seed: 11,
};

async function collect(generator: AsyncGenerator<SampledChoice[]>): Promise<SampledChoice[][]> {
  const batches: SampledChoice[][] = [];
  for await (const batch of generator) batches.push(batch);
  return batches;
}

async function failure(promise: Promise<unknown>): Promise<LlmError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof LlmError, `expected an LlmError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to fail');
}

describe('LlmClient against a failing server', () => {
  test('one request with n, the paper decoding parameters, top_k in the body, usage per choice', async () => {
    const server = await serve(() => ({ status: 200, body: completion(['a', 'bbb', 'cccccc'], 'stop', 30) }));
    const [batch] = await collect(client(server.url).sample(request));
    assert.equal(server.requests.length, 1);
    const sent = server.requests[0]!;
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.headers.authorization, 'Bearer sk-test');
    assert.deepEqual(
      { n: sent.body.n, temperature: sent.body.temperature, top_p: sent.body.top_p, top_k: sent.body.top_k, max_tokens: sent.body.max_tokens, seed: sent.body.seed },
      { n: 3, temperature: 0.7, top_p: 0.95, top_k: 100, max_tokens: 64, seed: 11 },
    );
    assert.deepEqual(batch!.map((choice) => choice.text), ['a', 'bbb', 'cccccc']);
    assert.deepEqual(batch!.map((choice) => choice.usage.completionTokens), [3, 9, 18]);
    assert.equal(batch![0]!.usage.completionTokensEstimated, true);
    assert.equal(batch![0]!.usage.promptTokens, 7);
    assert.ok(batch![0]!.usage.latencyMs >= 0);
  });

  test('retries 503 and 429 (honouring Retry-After) with backoff, then succeeds', async () => {
    const script = [apiError(503, 'loading'), { ...apiError(429, 'slow down'), headers: { 'retry-after': '0' } }];
    const server = await serve((_req, i) => script[i] ?? { status: 200, body: completion(['x', 'y', 'z']) });
    const [batch] = await collect(client(server.url).sample(request));
    assert.equal(server.requests.length, 3);
    assert.equal(batch![0]!.usage.attempts, 3);
  });

  test('a server that keeps failing: retries, then a clear retryable error', async () => {
    const server = await serve(() => apiError(500, 'CUDA out of memory'));
    const error = await failure(collect(client(server.url).sample(request)));
    assert.equal(server.requests.length, 3);
    assert.equal(error.kind, 'server-error');
    assert.equal(error.retryable, true);
    assert.match(error.message, /failed: HTTP 500.*CUDA out of memory.*gave up after 3 attempts/);
  });

  test('an unreachable endpoint: connection errors are retried, the message names the URL', async () => {
    const server = await serve(() => ({ status: 200 }));
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const error = await failure(collect(client(server.url).sample(request)));
    assert.equal(error.kind, 'unreachable');
    assert.match(error.message, new RegExp(`cannot reach the LLM endpoint ${server.url}.*gave up after 3 attempts`));
  });

  test('a server that never answers times out and is retried', async () => {
    const server = await serve(() => ({ status: 200, hang: true }));
    const error = await failure(collect(client(server.url, { timeoutMs: 150, retry: { retries: 1, baseDelayMs: 5, maxDelayMs: 5 } }).sample(request)));
    assert.equal(error.kind, 'timeout');
    assert.equal(server.requests.length, 2);
  });

  test('a malformed response is a retryable bad-response', async () => {
    const server = await serve((_req, i) => (i === 0 ? { status: 200, body: { choices: [] } } : { status: 200, body: completion(['ok', 'ok', 'ok']) }));
    const [batch] = await collect(client(server.url).sample(request));
    assert.equal(batch!.length, 3);
    assert.equal(server.requests.length, 2);
  });

  test('a wrong key fails at once and names the env var', async () => {
    const server = await serve(() => apiError(401, 'Invalid API key'));
    const error = await failure(collect(client(server.url).sample(request)));
    assert.equal(server.requests.length, 1);
    assert.equal(error.kind, 'auth');
    assert.equal(error.retryable, false);
    assert.match(error.message, /refused the key in \$ARCHLOOP_TEST_KEY/);
  });

  test('a wrong model name lists what the server serves', async () => {
    const server = await serve((req) =>
      req.path === '/v1/models' ? { status: 200, body: { object: 'list', data: [{ id: 'smollm2-135m-instruct' }] } } : apiError(404, 'The model `gpt-9` does not exist.'),
    );
    const error = await failure(collect(client(server.url).sample({ ...request, model: 'gpt-9' })));
    assert.equal(error.kind, 'unknown-model');
    assert.match(error.message, /model "gpt-9" is not served by .*; it serves: smollm2-135m-instruct/);
  });

  test('a wrong base URL (no OpenAI API there) says so', async () => {
    const server = await serve(() => apiError(404, 'Not Found'));
    const error = await failure(collect(client(server.url.replace(/\/v1$/, '/api')).sample(request)));
    assert.equal(error.kind, 'no-api');
    assert.match(error.message, /no OpenAI-compatible API at .*\/api/);
  });

  test('a server that rejects top_k is asked again without it', async () => {
    const server = await serve((req) => (req.body.top_k !== undefined ? apiError(400, 'Unrecognized request argument supplied: top_k') : { status: 200, body: completion(['a', 'b', 'c']) }));
    const llm = client(server.url);
    await collect(llm.sample(request));
    await collect(llm.sample(request));
    assert.deepEqual(server.requests.map((r) => r.body.top_k), [100, undefined, undefined]);
  });

  test('without n support: one request per sample, seeds seed+i, choices yielded as they arrive', async () => {
    const server = await serve((req) => ({ status: 200, body: completion([`seed ${req.body.seed}`], 'length', 64) }));
    const batches = await collect(client(server.url, { supportsN: false }).sample(request));
    assert.deepEqual(server.requests.map((r) => [r.body.n, r.body.seed]), [[1, 11], [1, 12], [1, 13]]);
    assert.deepEqual(batches.map((b) => b.map((c) => [c.text, c.finishReason, c.usage.completionTokens, c.usage.completionTokensEstimated])), [
      [['seed 11', 'length', 64, false]],
      [['seed 12', 'length', 64, false]],
      [['seed 13', 'length', 64, false]],
    ]);
  });

  test('a server that caps n is asked again for the rest', async () => {
    const server = await serve((req) => ({ status: 200, body: completion(Array.from({ length: Math.min(2, req.body.n) }, (_, i) => `c${i}`)) }));
    const batches = await collect(client(server.url).sample(request));
    assert.deepEqual(server.requests.map((r) => r.body.n), [3, 1]);
    assert.equal(batches.flat().length, 3);
  });
});

describe('client helpers', () => {
  test('apportionTokens splits exactly, in proportion to length', () => {
    assert.deepEqual(apportionTokens(10, ['aaaa', 'a']), [8, 2]);
    assert.deepEqual(apportionTokens(7, ['ab', 'ab', 'ab']).reduce((a, b) => a + b), 7);
    assert.deepEqual(apportionTokens(0, ['', '']), [0, 0]);
  });

  test('a bare origin means its /v1 API; explicit paths are kept', () => {
    assert.equal(normalizeBaseUrl('http://127.0.0.1:8000'), 'http://127.0.0.1:8000/v1');
    assert.equal(normalizeBaseUrl('http://127.0.0.1:8000/v1/'), 'http://127.0.0.1:8000/v1');
    assert.equal(normalizeBaseUrl('https://api.example.com/openai/v1'), 'https://api.example.com/openai/v1');
  });
});
