/**
 * The embedded OpenAI-compatible server's HTTP surface on node:http: /health,
 * /v1/models, /v1/chat/completions, /v1/completions, and vLLM's runtime LoRA API
 * (/v1/load_lora_adapter, /v1/unload_lora_adapter), so the same client code drives
 * this server and a vLLM deployment. Adapters load only from under `adaptersRoot`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { z } from 'zod';
import { resolveAdapterFile } from './adapters';
import {
  ApiError,
  ChatRequest,
  CompletionRequest,
  invalidBody,
  LoadAdapterRequest,
  messageText,
  stopList,
  UnloadAdapterRequest,
} from './api';
import { chatTemplate, type ChatTurn } from './chat';
import { EngineRequestError, GenerationAborted, type Engine, type Generation, type Sampling } from './engine';

export interface ServerOptions {
  engine: Engine;
  /** The only directory (and its subdirectories) adapters may be loaded from. */
  adaptersRoot: string;
  /** Converts a PEFT adapter directory to a llama.cpp GGUF LoRA file; returns its path. */
  convertAdapter: (adapterDir: string) => Promise<string>;
  log: (event: string, fields?: Record<string, unknown>) => void;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

async function readJson(request: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw invalidBody(parsed.error);
  return parsed.data;
}

function send(response: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function usageOf(generation: Generation) {
  const completion = generation.choices.reduce((sum, choice) => sum + choice.completionTokens, 0);
  return { prompt_tokens: generation.promptTokens, completion_tokens: completion, total_tokens: generation.promptTokens + completion };
}

function samplingOf(body: ChatRequest | CompletionRequest, maxTokens: number): Sampling {
  return {
    n: body.n,
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    maxTokens,
    stop: stopList(body.stop),
    ...(body.seed === null || body.seed === undefined ? {} : { seed: body.seed }),
  };
}

export function createApp(options: ServerOptions): Server {
  const { engine, log } = options;
  const template = chatTemplate(engine.chatTemplate(), engine.specialTokens());
  const now = () => Math.floor(Date.now() / 1000);
  const created = now();

  const logGeneration = (model: string, n: number, generation: Generation, cpuBefore: NodeJS.CpuUsage) => {
    const usage = usageOf(generation);
    const cpu = process.cpuUsage(cpuBefore);
    log('generated', {
      // CPU seconds say how much work a generation took even when other processes share the cores.
      cpuS: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
      model,
      n,
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      seconds: Number(generation.seconds.toFixed(3)),
      tokensPerS: Number((usage.completion_tokens / Math.max(generation.seconds, 1e-9)).toFixed(1)),
    });
  };

  /** Aborted when the client disconnects before the answer is sent (an activity timed out, say). */
  const clientGone = (response: ServerResponse): AbortSignal => {
    const controller = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) controller.abort();
    });
    return controller.signal;
  };

  const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => Promise<void>> = {
    'GET /health': async (_request, response) => send(response, 200, { status: 'ok', model: engine.options.servedName, pid: process.pid }),

    'GET /v1/models': async (_request, response) => {
      const card = (id: string, parent: string | null, root: string) => ({
        id,
        object: 'model',
        created,
        owned_by: 'archloop',
        root,
        parent,
        max_model_len: engine.contextSize,
      });
      const base = engine.options.servedName;
      send(response, 200, {
        object: 'list',
        data: engine.modelNames().map((id) => (id === base ? card(id, null, engine.options.modelPath) : card(id, base, engine.adapterPath(id)!))),
      });
    },

    'POST /v1/chat/completions': async (request, response) => {
      const body = parse(ChatRequest, await readJson(request));
      const turns: ChatTurn[] = body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: messageText(m.content) }));
      const continueFinal = body.continue_final_message;
      if (continueFinal && body.add_generation_prompt) {
        throw new ApiError(400, 'continue_final_message requires add_generation_prompt to be false', 'continue_final_message');
      }
      if (continueFinal && turns[turns.length - 1]?.role !== 'assistant') {
        throw new ApiError(400, 'continue_final_message needs the last message to be an assistant message', 'continue_final_message');
      }
      const prompt = template.render(turns, { continueFinal });
      const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? Math.max(1, engine.contextSize - engine.tokenize(prompt).length);
      const cpuBefore = process.cpuUsage();
      const generation = await engine.generate(body.model, prompt, samplingOf(body, maxTokens), clientGone(response));
      logGeneration(body.model, body.n, generation, cpuBefore);
      send(response, 200, {
        id: `chatcmpl-${randomUUID().replaceAll('-', '')}`,
        object: 'chat.completion',
        created: now(),
        model: body.model,
        choices: generation.choices.map((choice, index) => ({
          index,
          message: { role: 'assistant', content: choice.text },
          logprobs: null,
          finish_reason: choice.finishReason,
        })),
        usage: usageOf(generation),
      });
    },

    'POST /v1/completions': async (request, response) => {
      const body = parse(CompletionRequest, await readJson(request));
      const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
      const signal = clientGone(response);
      const choices = [];
      let promptTokens = 0;
      for (const prompt of prompts) {
        const cpuBefore = process.cpuUsage();
        const generation = await engine.generate(body.model, prompt, samplingOf(body, body.max_tokens), signal);
        logGeneration(body.model, body.n, generation, cpuBefore);
        promptTokens += generation.promptTokens;
        choices.push(...generation.choices);
      }
      const completionTokens = choices.reduce((sum, choice) => sum + choice.completionTokens, 0);
      send(response, 200, {
        id: `cmpl-${randomUUID().replaceAll('-', '')}`,
        object: 'text_completion',
        created: now(),
        model: body.model,
        choices: choices.map((choice, index) => ({ index, text: choice.text, logprobs: null, finish_reason: choice.finishReason })),
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      });
    },

    'POST /v1/load_lora_adapter': async (request, response) => {
      const body = parse(LoadAdapterRequest, await readJson(request));
      if (engine.knows(body.lora_name)) {
        throw new ApiError(400, `The lora adapter '${body.lora_name}' has already been loaded.`, 'lora_name');
      }
      const file = await resolveAdapterFile(body.lora_path, options.adaptersRoot, options.convertAdapter);
      engine.addAdapter(body.lora_name, file);
      log('adapter loaded', { name: body.lora_name, path: file });
      // vLLM answers with this plain-text body; clients rely only on the status code.
      send(response, 200, `Success: LoRA adapter '${body.lora_name}' added successfully.`, 'text/plain');
    },

    'POST /v1/unload_lora_adapter': async (request, response) => {
      const body = parse(UnloadAdapterRequest, await readJson(request));
      await engine.removeAdapter(body.lora_name);
      log('adapter unloaded', { name: body.lora_name });
      send(response, 200, `Success: LoRA adapter '${body.lora_name}' removed successfully.`, 'text/plain');
    },
  };

  return createServer((request, response) => {
    const started = performance.now();
    const path = (request.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    const route = routes[`${request.method} ${path}`];
    const handle = route ?? (async () => {
      throw new ApiError(404, `${request.method} ${path} is not a route of this server`, null, 'not_found');
    });
    handle(request, response)
      .catch((error: unknown) => {
        const apiError =
          error instanceof ApiError
            ? error
            : error instanceof EngineRequestError
              ? new ApiError(error.status, error.message, error.param, error.code)
              : new ApiError(500, `${(error as Error).name}: ${(error as Error).message}`);
        if (error instanceof GenerationAborted) return void log('request abandoned', { path });
        if (apiError.status >= 500) log('request failed', { path, error: (error as Error).stack ?? String(error) });
        if (!response.headersSent) send(response, apiError.status, apiError.body());
        else response.end();
      })
      .finally(() => {
        if (path !== '/health') log('request', { method: request.method, path, status: response.statusCode, ms: Number((performance.now() - started).toFixed(1)) });
      });
  });
}
