/**
 * Where the LLM is: the base URL from the run config (or the worker's own endpoint), the
 * API key from the worker's own environment only. A run config never names where the key
 * comes from, and the key is sent only to origins the worker trusts: otherwise anyone who
 * can start a run could have a worker's secret sent to a server of theirs.
 */
import type { RunConfig } from '../core/config';
import { embeddedLlmUrl } from '../env';

/** The worker's key: the first of these that is set. */
export const API_KEY_VARS = ['ARCHLOOP_LLM_API_KEY', 'OPENAI_API_KEY'] as const;
/** Comma-separated origins (scheme://host[:port]) besides the worker's own endpoint that may receive the key. */
export const KEY_ORIGINS_VAR = 'ARCHLOOP_LLM_API_KEY_ORIGINS';

export interface LlmEndpoint {
  /** OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: string;
  /** Whether a real key is sent. */
  apiKeySet: boolean;
  apiKey: string;
  /** What is sent, for error messages (never the key): e.g. "the key in $OPENAI_API_KEY". */
  keyDescription: string;
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

function workerEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return env.ARCHLOOP_LLM_URL ?? embeddedLlmUrl();
  } catch {
    return undefined; // no endpoint of its own: only explicitly trusted origins get the key
  }
}

/** Origins that may receive the worker's key: its own endpoint and the ones it lists. */
export function trustedKeyOrigins(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const own = workerEndpoint(env);
  const listed = (env[KEY_ORIGINS_VAR] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const origins = new Set<string>();
  for (const url of own ? [own, ...listed] : listed) {
    try {
      origins.add(new URL(url).origin);
    } catch {
      /* not a URL: trusts nothing */
    }
  }
  return origins;
}

export function resolveEndpoint(llm: RunConfig['llm'], env: NodeJS.ProcessEnv = process.env): LlmEndpoint {
  const baseUrl = normalizeBaseUrl(llm.baseUrl || (env.ARCHLOOP_LLM_URL ?? embeddedLlmUrl()));
  const source = API_KEY_VARS.find((name) => env[name]);
  if (!source) {
    return { baseUrl, apiKeySet: false, apiKey: NO_KEY, keyDescription: `no key ($${API_KEY_VARS.join(' and $')} are not set on the worker)` };
  }
  if (!trustedKeyOrigins(env).has(new URL(baseUrl).origin)) {
    return {
      baseUrl,
      apiKeySet: false,
      apiKey: NO_KEY,
      keyDescription: `no key (the worker sends $${source} only to its own endpoint and to origins listed in $${KEY_ORIGINS_VAR})`,
    };
  }
  return { baseUrl, apiKeySet: true, apiKey: env[source]!, keyDescription: `the key in $${source}` };
}
