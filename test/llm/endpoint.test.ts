/**
 * The API key is the worker's and goes only where the worker trusts: a run config can name
 * the URL but neither the variable the key comes from nor a way to have it sent elsewhere.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { buildConfig, configWarnings } from '../../src/core/config';
import { LlmClient } from '../../src/llm/client';
import { resolveEndpoint, trustedKeyOrigins } from '../../src/llm/endpoint';
import { completion, startFakeServer, type FakeServer } from './fake-server';

const servers: FakeServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

const own = 'http://127.0.0.1:8008/v1';
const llm = (overrides: Record<string, unknown> = {}) => buildConfig('demo', { llm: overrides }).llm;

test('the key comes from ARCHLOOP_LLM_API_KEY, else OPENAI_API_KEY, and goes to the worker’s own endpoint', () => {
  const env = { ARCHLOOP_LLM_URL: own, ARCHLOOP_LLM_API_KEY: 'sk-archloop', OPENAI_API_KEY: 'sk-openai' };
  assert.deepEqual(resolveEndpoint(llm(), env), { baseUrl: own, apiKeySet: true, apiKey: 'sk-archloop', keyDescription: 'the key in $ARCHLOOP_LLM_API_KEY' });
  const fallback = resolveEndpoint(llm({ baseUrl: 'http://127.0.0.1:8008/other/v1' }), { ARCHLOOP_LLM_URL: own, OPENAI_API_KEY: 'sk-openai' });
  assert.equal(fallback.apiKey, 'sk-openai', 'same origin, other path: still the worker’s endpoint');
  const none = resolveEndpoint(llm(), { ARCHLOOP_LLM_URL: own });
  assert.deepEqual([none.apiKeySet, none.apiKey], [false, 'EMPTY']);
  assert.match(none.keyDescription, /ARCHLOOP_LLM_API_KEY and \$OPENAI_API_KEY are not set/);
});

test('another origin gets no key unless the worker lists it', () => {
  const env = { ARCHLOOP_LLM_URL: own, OPENAI_API_KEY: 'sk-openai' };
  const elsewhere = resolveEndpoint(llm({ baseUrl: 'https://evil.example:9000/v1' }), env);
  assert.deepEqual([elsewhere.apiKeySet, elsewhere.apiKey], [false, 'EMPTY']);
  assert.match(elsewhere.keyDescription, /only to its own endpoint and to origins listed in \$ARCHLOOP_LLM_API_KEY_ORIGINS/);
  const listed = { ...env, ARCHLOOP_LLM_API_KEY_ORIGINS: 'https://api.example.com, https://evil.example:9000' };
  assert.equal(resolveEndpoint(llm({ baseUrl: 'https://evil.example:9000/v1' }), listed).apiKey, 'sk-openai');
  assert.equal(resolveEndpoint(llm({ baseUrl: 'https://evil.example:9001/v1' }), listed).apiKey, 'EMPTY', 'the port is part of the origin');
  assert.deepEqual([...trustedKeyOrigins({ ARCHLOOP_LLM_URL: 'http://own:2/v1', ARCHLOOP_LLM_API_KEY_ORIGINS: 'not a url,http://a:1' })], ['http://own:2', 'http://a:1']);
});

test('an old config naming apiKeyEnv is accepted with a warning and cannot read another variable', async () => {
  const overrides = { llm: { apiKeyEnv: 'DATABASE_URL' } };
  assert.match(configWarnings(overrides).join('\n'), /llm\.apiKeyEnv is ignored/);
  assert.deepEqual(configWarnings({ llm: {} }), []);
  const server = await startFakeServer(() => ({ status: 200, body: completion(['ok']) }));
  servers.push(server);
  const config = buildConfig('demo', { llm: { apiKeyEnv: 'DATABASE_URL', baseUrl: server.url } });
  assert.equal(JSON.stringify(config).includes('apiKeyEnv'), false, 'dropped from the parsed config');
  const env = { ARCHLOOP_LLM_URL: own, DATABASE_URL: 'postgres://archloop:secret@db/archloop', OPENAI_API_KEY: 'sk-openai' };
  const client = new LlmClient({ endpoint: resolveEndpoint(config.llm, env), timeoutMs: 5000, retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 }, supportsN: true });
  for await (const _ of client.sample({ model: 'm', messages: [{ role: 'user', content: 'x' }], count: 1, params: { temperature: 0.7, topP: 0.95, topK: 100, maxTokens: 8 }, seed: 1 })) {
    /* drain */
  }
  assert.equal(server.requests[0]?.headers.authorization, 'Bearer EMPTY', 'the server the run chose sees neither DATABASE_URL nor the key');
});
