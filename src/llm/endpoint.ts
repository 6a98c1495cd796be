/** Where the LLM is: base URL, API key and model, from the run config and the environment. */
import type { RunConfig } from '../core/config';
import { embeddedLlmUrl } from '../env';

export interface LlmEndpoint {
  /** OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: string;
  /** Name of the env var the key came from (for error messages; never the key). */
  apiKeyEnv: string;
  apiKeySet: boolean;
  apiKey: string;
}

/** Local servers (vLLM, the embedded one) ignore the key, but the client wants one. */
const NO_KEY = 'EMPTY';

/** A bare origin (`http://host:8000`) means its `/v1` API; any explicit path is kept. */
export function normalizeBaseUrl(url: string): string {
  const parsed = new URL(url.trim());
  const pathname = parsed.pathname.replace(/\/+$/, '');
  parsed.pathname = pathname === '' ? '/v1' : pathname;
  return parsed.toString().replace(/\/+$/, '');
}

export function resolveEndpoint(llm: RunConfig['llm'], env: NodeJS.ProcessEnv = process.env): LlmEndpoint {
  const key = env[llm.apiKeyEnv];
  return {
    baseUrl: normalizeBaseUrl(llm.baseUrl || embeddedLlmUrl()),
    apiKeyEnv: llm.apiKeyEnv,
    apiKeySet: Boolean(key),
    apiKey: key || NO_KEY,
  };
}
