/**
 * The sampling client: the `openai` package pointed at any OpenAI-compatible endpoint
 * (vLLM, the embedded server, a hosted API). It asks for `n` choices per request when the
 * server supports it, passes top_k as an extra body field (dropped if the server rejects
 * it), retries transient failures with backoff, turns wrong URL / model / key into clear
 * errors, and validates every response with zod.
 */
import { Agent } from 'undici';
import OpenAI from 'openai';
import { z } from 'zod';
import type { ChatMessage } from '../core/prompts';
import type { LlmEndpoint } from './endpoint';
import { LlmError } from './errors';
import { withRetry, type RetryPolicy } from './retry';

export interface SamplingParams {
  temperature: number;
  topP: number;
  /** 0 = do not send top_k. */
  topK: number;
  maxTokens: number;
}

export interface SampleRequest {
  model: string;
  messages: ChatMessage[];
  count: number;
  params: SamplingParams;
  /** Base seed; choice k of the whole sample uses seed + k, so a retried batch asks for the same samples. */
  seed?: number;
  /**
   * The start of the assistant's reply, which the model continues (vLLM's
   * `continue_final_message`; the embedded server speaks it too). Each choice's text
   * is returned with the prefill in front, as the whole reply.
   */
  prefill?: string;
}

export interface ChoiceUsage {
  promptTokens: number | null;
  /** Exact when the request had one choice; otherwise the request's total split by length. */
  completionTokens: number | null;
  completionTokensEstimated: boolean;
  requestCompletionTokens: number | null;
  choicesInRequest: number;
  /** Wall time of the request that produced this choice (all its choices share it). */
  latencyMs: number;
  attempts: number;
  requestId: string | null;
}

export interface SampledChoice {
  text: string;
  finishReason: string | null;
  usage: ChoiceUsage;
}

export interface LlmLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface LlmClientOptions {
  endpoint: LlmEndpoint;
  timeoutMs: number;
  retry: RetryPolicy;
  supportsN: boolean;
  signal?: AbortSignal;
  log?: LlmLogger;
}

const ChatCompletionResponse = z.object({
  id: z.string().nullish(),
  choices: z
    .array(
      z.object({
        index: z.number().int().nonnegative(),
        message: z.object({ content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() }).nullish(),
});
type ChatCompletionResponse = z.infer<typeof ChatCompletionResponse>;

const ModelList = z.object({ data: z.array(z.object({ id: z.string() })) });

const silent: LlmLogger = { info: () => {}, warn: () => {} };

/** Splits `total` over the texts in proportion to their length (largest remainder, exact sum). */
export function apportionTokens(total: number, texts: readonly string[]): number[] {
  const lengths = texts.map((text) => Math.max(1, text.length));
  const sum = lengths.reduce((a, b) => a + b, 0);
  const shares = lengths.map((length) => (total * length) / sum);
  const result = shares.map(Math.floor);
  let left = total - result.reduce((a, b) => a + b, 0);
  const byRemainder = shares.map((share, i) => ({ i, r: share - Math.floor(share) })).sort((a, b) => b.r - a.r);
  for (const { i } of byRemainder) {
    if (left-- <= 0) break;
    result[i]! += 1;
  }
  return result;
}

export class LlmClient {
  private readonly openai: OpenAI;
  private readonly log: LlmLogger;
  private topKRejected = false;

  constructor(private readonly options: LlmClientOptions) {
    this.openai = new OpenAI({
      baseURL: options.endpoint.baseUrl,
      apiKey: options.endpoint.apiKey,
      timeout: options.timeoutMs,
      maxRetries: 0, // retries are ours: backoff policy from config, classified errors
      // Node's fetch gives up after 300 s without response headers, and a non-streaming
      // server sends them only when all n samples are done (minutes on a CPU, or 2048
      // tokens × n on a busy GPU): let our own timeout be the only limit.
      fetchOptions: {
        dispatcher: new Agent({ headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs }),
      } as NonNullable<ConstructorParameters<typeof OpenAI>[0]>["fetchOptions"],
    });
    this.log = options.log ?? silent;
  }

  /** Yields the choices of each request as it completes, `count` in all. */
  async *sample(request: SampleRequest): AsyncGenerator<SampledChoice[]> {
    let produced = 0;
    while (produced < request.count) {
      const n = this.options.supportsN ? request.count - produced : 1;
      // Choice j of a request uses seed + j (the embedded server; vLLM derives per-choice
      // streams from the seed): the next request starts where this one's choices ended.
      const seed = request.seed === undefined ? undefined : request.seed + produced;
      // A server may cap n and return fewer choices; the loop asks again for the rest.
      const choices = (await this.requestWithRetry(request, n, seed)).slice(0, request.count - produced);
      produced += choices.length;
      yield choices;
    }
  }

  /** Model ids the endpoint serves (GET /models). */
  async listModels(): Promise<string[]> {
    try {
      const response = await this.openai.get('/models', { signal: this.options.signal, maxRetries: 0 });
      return ModelList.parse(response).data.map((model) => model.id);
    } catch (error) {
      throw this.classify(error);
    }
  }

  private async requestWithRetry(request: SampleRequest, n: number, seed: number | undefined): Promise<SampledChoice[]> {
    let attempts = 0;
    const started = Date.now();
    const { response, latencyMs } = await withRetry(
      async () => {
        attempts++;
        const t0 = Date.now();
        const result = await this.requestOnce(request, n, seed);
        return { response: result, latencyMs: Date.now() - t0 };
      },
      this.options.retry,
      {
        isRetryable: (error) => error instanceof LlmError && error.retryable,
        retryAfterS: (error) => (error instanceof LlmError ? error.retryAfterS : undefined),
        onRetry: ({ attempt, delayMs, error }) =>
          this.log.warn('LLM request failed; retrying', { attempt, delayMs, error: (error as Error).message }),
        signal: this.options.signal,
      },
    ).catch((error: unknown) => {
      if (error instanceof LlmError && error.retryable) {
        const waited = ((Date.now() - started) / 1000).toFixed(1);
        throw new LlmError(error.kind, `${error.message} (gave up after ${attempts} attempts in ${waited} s)`, error.status);
      }
      throw error;
    });
    return this.toChoices(response, latencyMs, attempts, request.prefill ?? '');
  }

  private async requestOnce(request: SampleRequest, n: number, seed: number | undefined): Promise<ChatCompletionResponse> {
    const { params } = request;
    const prefill = request.prefill ? { role: 'assistant' as const, content: request.prefill } : undefined;
    const body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & ContinueFinal & { top_k?: number } = {
      model: request.model,
      messages: prefill ? [...request.messages, prefill] : request.messages,
      ...(prefill ? { continue_final_message: true, add_generation_prompt: false } : {}),
      // A prefill that opens a code fence: the reply ends where the fence closes, or where a
      // `__main__` block starts. Small models explain or exercise their code afterwards, which
      // costs tokens (minutes on a CPU) and is never part of the program archloop runs.
      ...(prefill && opensCodeFence(prefill.content) ? { stop: PROGRAM_END } : {}),
      temperature: params.temperature,
      top_p: params.topP,
      max_tokens: params.maxTokens,
      n,
      ...(seed === undefined ? {} : { seed }),
      ...(params.topK > 0 && !this.topKRejected ? { top_k: params.topK } : {}),
    };
    try {
      const raw: unknown = await this.openai.chat.completions.create(body, { signal: this.options.signal });
      const parsed = ChatCompletionResponse.safeParse(raw);
      if (!parsed.success) {
        throw new LlmError('bad-response', `the LLM endpoint returned a malformed chat completion: ${parsed.error.message}`);
      }
      return parsed.data;
    } catch (error) {
      if (error instanceof LlmError) throw error;
      if (body.top_k !== undefined && isTopKRejection(error)) {
        this.topKRejected = true;
        this.log.warn('the LLM endpoint rejects top_k; sampling without it');
        return this.requestOnce(request, n, seed);
      }
      throw await this.diagnose(this.classify(error), request.model);
    }
  }

  private toChoices(response: ChatCompletionResponse, latencyMs: number, attempts: number, prefill: string): SampledChoice[] {
    const choices = [...response.choices].sort((a, b) => a.index - b.index);
    const generated = choices.map((choice) => choice.message.content ?? '');
    const texts = generated.map((text) => prefill + text);
    const total = response.usage?.completion_tokens ?? null;
    const split = total === null ? null : apportionTokens(total, generated);
    return choices.map((choice, i) => ({
      text: texts[i]!,
      finishReason: choice.finish_reason ?? null,
      usage: {
        promptTokens: response.usage?.prompt_tokens ?? null,
        completionTokens: split ? split[i]! : null,
        completionTokensEstimated: split !== null && choices.length > 1,
        requestCompletionTokens: total,
        choicesInRequest: choices.length,
        latencyMs,
        attempts,
        requestId: response.id ?? null,
      },
    }));
  }

  /** Maps an `openai` error to a classified LlmError with a message a user can act on. */
  private classify(error: unknown): LlmError {
    const url = this.options.endpoint.baseUrl;
    if (error instanceof LlmError) return error;
    if (error instanceof OpenAI.APIUserAbortError) return new LlmError('bad-request', 'the LLM request was cancelled');
    if (error instanceof OpenAI.APIConnectionTimeoutError) {
      return new LlmError('timeout', `the LLM endpoint ${url} did not answer within ${this.options.timeoutMs / 1000} s`);
    }
    if (error instanceof OpenAI.APIConnectionError) {
      return new LlmError('unreachable', `cannot reach the LLM endpoint ${url}: ${causeChain(error.cause ?? error)}`);
    }
    if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
      const status = error.status;
      const detail = `HTTP ${status}: ${error.message}`;
      if (status === 401 || status === 403) {
        return new LlmError('auth', `the LLM endpoint ${url} refused ${this.options.endpoint.keyDescription}: ${detail}`, status);
      }
      if (status === 429) return new LlmError('rate-limited', `the LLM endpoint ${url} is rate limiting: ${detail}`, status, retryAfter(error.headers));
      if (status >= 500 || status === 408) return new LlmError('server-error', `the LLM endpoint ${url} failed: ${detail}`, status, retryAfter(error.headers));
      return new LlmError('bad-request', `the LLM endpoint ${url} rejected the request: ${detail}`, status);
    }
    return new LlmError('bad-request', `LLM request failed: ${(error as Error)?.message ?? String(error)}`);
  }

  /** A 404 (or a 400 naming the model) means a wrong base URL or a wrong model: find out which. */
  private async diagnose(error: LlmError, model: string): Promise<LlmError> {
    const suspicious = error.status === 404 || (error.status !== undefined && error.status < 500 && /model/i.test(error.message));
    if (error.kind !== 'bad-request' || !suspicious) return error;
    const url = this.options.endpoint.baseUrl;
    let served: string[];
    try {
      served = await this.listModels();
    } catch (listError) {
      const why = listError instanceof LlmError ? listError.message : String(listError);
      return new LlmError('no-api', `no OpenAI-compatible API at ${url} (chat: ${error.message}; GET /models: ${why}); the base URL usually ends in /v1`, error.status);
    }
    if (!served.includes(model)) {
      return new LlmError('unknown-model', `model "${model}" is not served by ${url}; it serves: ${served.join(', ') || '(nothing)'}`, error.status);
    }
    return error;
  }
}

const PROGRAM_END = ['\n```', '\nif __name__'];

/** Whether `text` ends inside a ``` code block (an odd number of fence lines). */
export function opensCodeFence(text: string): boolean {
  return (text.match(/^ {0,3}```/gm) ?? []).length % 2 === 1;
}

/** vLLM's extension for continuing a prefilled assistant message. */
interface ContinueFinal {
  continue_final_message?: boolean;
  add_generation_prompt?: boolean;
}

function isTopKRejection(error: unknown): boolean {
  return error instanceof OpenAI.APIError && (error.status === 400 || error.status === 422) && /top_k/i.test(error.message);
}

/** `fetch failed` alone says nothing; the root cause (ECONNREFUSED, ENOTFOUND…) does. */
function causeChain(error: unknown): string {
  const parts: string[] = [];
  for (let e = error as { message?: string; code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const part = [e.code, e.message].filter(Boolean).join(' ');
    if (part && !parts.some((seen) => seen.includes(part))) parts.push(part);
  }
  return parts.join(': ') || String(error);
}

function retryAfter(headers: Headers | undefined): number | undefined {
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
