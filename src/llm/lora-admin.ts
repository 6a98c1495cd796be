/**
 * vLLM's runtime LoRA API (`POST /v1/load_lora_adapter`), which the embedded server speaks
 * too. vLLM needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora for it.
 */
import { LlmError } from './errors';
import type { LlmEndpoint } from './endpoint';

export type LoadOutcome = 'loaded' | 'already-loaded';

export async function loadLoraAdapter(
  endpoint: LlmEndpoint,
  adapter: { name: string; path: string },
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<LoadOutcome> {
  const url = `${endpoint.baseUrl}/load_lora_adapter`;
  const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.apiKey}` },
      body: JSON.stringify({ lora_name: adapter.name, lora_path: adapter.path }),
      signal: AbortSignal.any(signals),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = [cause?.code, cause?.message ?? (error as Error).message].filter(Boolean).join(' ');
    const kind = (error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
    throw new LlmError(kind, `cannot load LoRA adapter ${adapter.name} into ${endpoint.baseUrl}: ${why}`);
  }
  const body = await response.text();
  if (response.ok) return 'loaded';
  // vLLM answers 400 "The lora adapter '<name>' has already been loaded." for a repeated load.
  if (response.status === 400 && /already (been )?loaded/i.test(body)) return 'already-loaded';
  const detail = `HTTP ${response.status}: ${body.slice(0, 500)}`;
  if (response.status === 404 || response.status === 405) {
    throw new LlmError('no-api', `${endpoint.baseUrl} has no runtime LoRA API (${url} → ${detail}); for vLLM set VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora`, response.status);
  }
  if (response.status === 401 || response.status === 403) {
    throw new LlmError('auth', `${endpoint.baseUrl} refused ${endpoint.keyDescription} when loading adapter ${adapter.name}: ${detail}`, response.status);
  }
  if (response.status >= 500 || response.status === 429) {
    throw new LlmError('server-error', `loading adapter ${adapter.name} into ${endpoint.baseUrl} failed: ${detail}`, response.status);
  }
  throw new LlmError('bad-request', `${endpoint.baseUrl} refused adapter ${adapter.name} at ${adapter.path}: ${detail}`, response.status);
}
