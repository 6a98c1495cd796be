/** Builds the sampling client and its request parameters from a run config. */
import type { RunConfig } from '../core/config';
import { LlmClient, type LlmLogger, type SamplingParams } from './client';
import { resolveEndpoint } from './endpoint';
import type { RetryPolicy } from './retry';

export interface ClientExtras {
  signal?: AbortSignal;
  log?: LlmLogger;
  backoff?: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>;
}

export function llmClientFromConfig(config: RunConfig, extras: ClientExtras = {}): LlmClient {
  const { llm } = config;
  return new LlmClient({
    endpoint: resolveEndpoint(llm),
    timeoutMs: llm.requestTimeoutS * 1000,
    retry: {
      retries: llm.maxRetries,
      ...(extras.backoff ?? { baseDelayMs: llm.retryBaseDelayS * 1000, maxDelayMs: llm.retryMaxDelayS * 1000 }),
    },
    supportsN: llm.supportsN,
    signal: extras.signal,
    log: extras.log,
  });
}

/** The paper's decoding defaults live in config.sampling; this only renames them. */
export function samplingParams(config: RunConfig): SamplingParams {
  const { temperature, topP, topK, maxNewTokens } = config.sampling;
  return { temperature, topP, topK, maxTokens: maxNewTokens };
}
