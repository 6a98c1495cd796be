/**
 * What an OpenAI-compatible endpoint can do, probed with tiny requests before a run (and by
 * `archloop preflight`): the model is served, several choices per request (`n`), vLLM's
 * runtime LoRA API (the loop publishes an adapter after every fine-tune), and the
 * `continue_final_message` prefill the design prompt uses. A run that needs what the
 * endpoint lacks should say so before its first cycle, not after hours of work.
 */
import type { RunConfig } from '../core/config';
import type { LlmEndpoint } from './endpoint';
import { LlmError } from './errors';

export interface Capabilities {
  models: string[];
  modelServed: boolean;
  /** Several choices per request; null when not probed (the model is missing). */
  n: boolean | null;
  loraApi: boolean;
  prefill: boolean | null;
}

interface ProbeOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

async function call(endpoint: LlmEndpoint, method: 'GET' | 'POST', route: string, body: unknown, options: ProbeOptions) {
  const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
  try {
    const response = await fetch(`${endpoint.baseUrl}${route}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.apiKey}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.any(signals),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  } catch (error) {
    const kind = (error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
    throw new LlmError(kind, `cannot reach the LLM endpoint ${endpoint.baseUrl}${route}: ${(error as Error).message}`);
  }
}

export async function probeEndpoint(endpoint: LlmEndpoint, model: string, options: ProbeOptions): Promise<Capabilities> {
  const listed = await call(endpoint, 'GET', '/models', undefined, options);
  if (listed.status === 401 || listed.status === 403) {
    throw new LlmError('auth', `the LLM endpoint ${endpoint.baseUrl} refused the API key (HTTP ${listed.status})`, listed.status);
  }
  const data = (listed.json as { data?: Array<{ id?: unknown }> } | undefined)?.data;
  if (listed.status !== 200 || !Array.isArray(data)) {
    throw new LlmError('no-api', `no OpenAI-compatible API at ${endpoint.baseUrl} (GET /models → HTTP ${listed.status}); the base URL usually ends in /v1`);
  }
  const models = data.map((entry) => String(entry.id));
  const lora = await call(endpoint, 'POST', '/load_lora_adapter', {}, options);
  // A missing route is 404/405; an existing one refuses the empty body (400/422).
  const loraApi = lora.status !== 404 && lora.status !== 405;
  if (!models.includes(model)) return { models, modelServed: false, n: null, loraApi, prefill: null };

  const chat = (extra: Record<string, unknown>) =>
    call(endpoint, 'POST', '/chat/completions', { model, max_tokens: 1, temperature: 1, messages: [{ role: 'user', content: 'Say OK.' }], ...extra }, options);
  const many = await chat({ n: 2 });
  const choices = (many.json as { choices?: unknown[] } | undefined)?.choices;
  const n = many.status === 200 && Array.isArray(choices) && choices.length === 2;
  const prefilled = await chat({
    messages: [{ role: 'user', content: 'Say OK.' }, { role: 'assistant', content: 'O' }],
    continue_final_message: true,
    add_generation_prompt: false,
  });
  const prefill = prefilled.status === 200;
  return { models, modelServed: true, n, loraApi, prefill };
}

/** Why `config` cannot run against an endpoint with `caps`: one line per missing capability. */
export function missingCapabilities(caps: Capabilities, config: RunConfig, baseUrl: string): string[] {
  const problems: string[] = [];
  if (!caps.modelServed) problems.push(`model "${config.llm.model}" is not served by ${baseUrl} (it serves: ${caps.models.join(', ') || 'nothing'})`);
  if (caps.n === false && config.llm.supportsN) {
    problems.push(`${baseUrl} does not return several choices per request (n): set llm.supportsN to false`);
  }
  if (!caps.loraApi && config.lora.enabled) {
    problems.push(
      `${baseUrl} has no runtime LoRA API (POST /v1/load_lora_adapter), so fine-tuned adapters cannot be published: ` +
        'for vLLM start it with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or set lora.enabled to false',
    );
  }
  if (caps.prefill === false && config.prompt.prefill) {
    problems.push(`${baseUrl} refuses continue_final_message (the prefilled reply): set prompt.prefill to false`);
  }
  return problems;
}
