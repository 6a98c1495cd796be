/**
 * The request bodies the embedded server accepts (OpenAI's chat and text completions,
 * with vLLM's extensions top_k, continue_final_message and the runtime LoRA API), and
 * OpenAI's error shape. Unknown fields are ignored, as OpenAI and vLLM do, except those
 * whose silent omission would change the answer (streaming, logprobs).
 */
import { z } from 'zod';

const Stop = z.union([z.string(), z.array(z.string()).max(16)]).nullish();

const SamplingFields = {
  model: z.string().min(1),
  n: z.number().int().min(1).max(128).default(1),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  /** vLLM: -1 or 0 disables top-k. */
  top_k: z.number().int().min(-1).default(-1),
  seed: z.number().int().nullish(),
  stop: Stop,
  stream: z.literal(false, { error: 'stream: streaming is not supported by this server' }).nullish(),
  logprobs: z.union([z.literal(false), z.null()], { error: 'logprobs: not supported by this server' }).optional(),
};

const TextPart = z.object({ type: z.literal('text'), text: z.string() });
export const ChatMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(TextPart)]),
});

export const ChatRequest = z.object({
  ...SamplingFields,
  messages: z.array(ChatMessage).min(1),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  /** vLLM: continue the final assistant message instead of starting a new one (needs add_generation_prompt false). */
  continue_final_message: z.boolean().default(false),
  add_generation_prompt: z.boolean().default(true),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

export const CompletionRequest = z.object({
  ...SamplingFields,
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(16)]),
  /** OpenAI's documented default for /v1/completions. */
  max_tokens: z.number().int().positive().default(16),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const LoadAdapterRequest = z.object({ lora_name: z.string().min(1), lora_path: z.string().min(1) });
export const UnloadAdapterRequest = z.object({ lora_name: z.string().min(1) });

export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop === null || stop === undefined) return [];
  return (typeof stop === 'string' ? [stop] : stop).filter((s) => s.length > 0);
}

export function messageText(content: z.infer<typeof ChatMessage>['content']): string {
  return typeof content === 'string' ? content : content.map((part) => part.text).join('');
}

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    const type = this.status >= 500 ? 'server_error' : this.status === 404 ? 'not_found_error' : 'invalid_request_error';
    return { error: { message: this.message, type, param: this.param, code: this.code } };
  }
}

/** The first zod issue as OpenAI words a bad field: `messages.0.role: …`, with the field as param. */
export function invalidBody(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  const where = issue.path.map(String).join('.');
  return new ApiError(400, where ? `${where}: ${issue.message}` : issue.message, issue.path.length ? String(issue.path[0]) : null);
}
