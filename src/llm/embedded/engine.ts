/**
 * The embedded server's engine: llama.cpp through node-llama-cpp (prebuilt CPU binaries,
 * GGUF weights, LoRA adapters per context). Measured on 2 cores it decodes a 1.5B Q4_K_M
 * model several times faster than transformers in float32 (bench/RESULTS.md, "LLM"), which
 * is why the embedded server is TypeScript and not the Python/transformers server it replaced.
 *
 * One context per served model (the base model, and each loaded adapter), each with
 * `parallel` sequences that llama.cpp decodes in one batch. A request's prompt is evaluated
 * once and its KV state copied into the other sequences, so n choices pay one prefill.
 */
import type {
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from 'node-llama-cpp' with { 'resolution-mode': 'import' };

export interface EngineOptions {
  modelPath: string;
  servedName: string;
  /** CPU threads for llama.cpp. */
  threads: number;
  /** Sequences per context: how many choices decode in one batch. */
  parallel: number;
  /** Tokens per sequence (prompt + completion). */
  contextSize: number;
  /** Contexts kept at once (base + adapters); the least recently used idle one is disposed. */
  maxContexts?: number;
}

export interface Sampling {
  n: number;
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
  stop: readonly string[];
  seed?: number;
}

/** The client went away: the generation stops and its sequences go back to the pool. */
export class GenerationAborted extends Error {
  override name = 'GenerationAborted';
}

export interface Choice {
  text: string;
  finishReason: 'stop' | 'length';
  completionTokens: number;
}

export interface Generation {
  choices: Choice[];
  promptTokens: number;
  seconds: number;
}

/** A request the engine refuses (OpenAI answers these with 400 or 404). */
export class EngineRequestError extends Error {
  override name = 'EngineRequestError';
  constructor(
    message: string,
    readonly status: 400 | 404,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

/** Counting semaphore over a fixed set of sequences: FIFO, grants up to k at once (at least one). */
class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: Array<() => void> = [];
  busy = 0;

  constructor(sequences: LlamaContextSequence[]) {
    this.free = [...sequences];
  }

  async acquire(k: number): Promise<LlamaContextSequence[]> {
    while (this.free.length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    const taken = this.free.splice(0, Math.max(1, Math.min(k, this.free.length)));
    this.busy += taken.length;
    return taken;
  }

  release(sequences: LlamaContextSequence[]): void {
    this.free.push(...sequences);
    this.busy -= sequences.length;
    for (let i = 0; i < sequences.length && this.waiters.length; i++) this.waiters.shift()!();
  }
}

interface Slot {
  name: string;
  context: LlamaContext;
  pool: SequencePool;
  lastUsed: number;
}

type NodeLlamaCpp = typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' } });

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** `text` up to the earliest stop string, and whether one occurred. */
export function cutAtStop(text: string, stops: readonly string[]): { text: string; stopped: boolean } {
  let cut = -1;
  for (const stop of stops) {
    const at = stop ? text.indexOf(stop) : -1;
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut < 0 ? { text, stopped: false } : { text: text.slice(0, cut), stopped: true };
}

export class Engine {
  private readonly slots = new Map<string, Slot>();
  private readonly adapters = new Map<string, string>();
  private readonly opening = new Map<string, Promise<Slot>>();

  private constructor(
    readonly options: EngineOptions,
    private readonly llama: Llama,
    readonly model: LlamaModel,
  ) {}

  static async load(options: EngineOptions): Promise<Engine> {
    const lib: NodeLlamaCpp = await import('node-llama-cpp');
    // build: 'never': use the prebuilt binary; never download or compile llama.cpp (offline machines).
    const llama = await lib.getLlama({ gpu: 'auto', build: 'never', maxThreads: options.threads, logLevel: lib.LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: options.modelPath });
    const engine = new Engine(options, llama, model);
    await engine.slot(options.servedName); // fail at start-up, not on the first request
    return engine;
  }

  get contextSize(): number {
    return this.options.contextSize;
  }

  get gpu(): string | false {
    return this.llama.gpu;
  }

  /** Served model names: the base model first, then the adapters in load order. */
  modelNames(): string[] {
    return [this.options.servedName, ...this.adapters.keys()];
  }

  adapterPath(name: string): string | undefined {
    return this.adapters.get(name);
  }

  knows(name: string): boolean {
    return name === this.options.servedName || this.adapters.has(name);
  }

  tokenize(text: string): Token[] {
    return this.model.tokenize(text, true);
  }

  /** The chat template shipped in the GGUF file (Jinja), if any. */
  chatTemplate(): string | undefined {
    const tokenizer = this.model.fileInfo.metadata.tokenizer as { chat_template?: unknown } | undefined;
    return typeof tokenizer?.chat_template === 'string' ? tokenizer.chat_template : undefined;
  }

  tokenText(id: number | undefined): string {
    return id === undefined || id < 0 ? '' : this.model.detokenize([id as Token], true);
  }

  specialTokens(): { bos: string; eos: string } {
    const ggml = (this.model.fileInfo.metadata.tokenizer as { ggml?: { bos_token_id?: number; eos_token_id?: number } }).ggml;
    return { bos: this.tokenText(ggml?.bos_token_id), eos: this.tokenText(ggml?.eos_token_id) };
  }

  addAdapter(name: string, ggufPath: string): void {
    if (this.knows(name)) throw new EngineRequestError(`The lora adapter '${name}' has already been loaded.`, 400, 'lora_name');
    this.adapters.set(name, ggufPath);
  }

  async removeAdapter(name: string): Promise<void> {
    if (!this.adapters.has(name)) throw new EngineRequestError(`The lora adapter '${name}' cannot be found.`, 404, 'lora_name');
    this.adapters.delete(name);
    const slot = this.slots.get(name);
    this.slots.delete(name);
    if (slot) await this.disposeWhenIdle(slot);
  }

  private async disposeWhenIdle(slot: Slot): Promise<void> {
    while (slot.pool.busy > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    await slot.context.dispose();
  }

  private async slot(name: string): Promise<Slot> {
    const existing = this.slots.get(name);
    if (existing) {
      existing.lastUsed = Date.now();
      return existing;
    }
    let opening = this.opening.get(name);
    if (!opening) {
      opening = this.openSlot(name).finally(() => this.opening.delete(name));
      this.opening.set(name, opening);
    }
    return opening;
  }

  private async openSlot(name: string): Promise<Slot> {
    const { parallel, contextSize, threads } = this.options;
    await this.evictIdle();
    const lora = this.adapters.get(name);
    const context = await this.model.createContext({
      sequences: parallel,
      contextSize,
      threads,
      ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}),
    });
    const sequences = Array.from({ length: parallel }, () => context.getSequence());
    const slot: Slot = { name, context, pool: new SequencePool(sequences), lastUsed: Date.now() };
    this.slots.set(name, slot);
    return slot;
  }

  /** Keeps at most maxContexts - 1 contexts before a new one opens (the memory of each is parallel × contextSize KV cells). */
  private async evictIdle(): Promise<void> {
    const max = this.options.maxContexts ?? 2;
    const idle = [...this.slots.values()].filter((slot) => slot.pool.busy === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.slots.size >= max && idle.length) {
      const victim = idle.shift()!;
      this.slots.delete(victim.name);
      await victim.context.dispose();
    }
  }

  async generate(name: string, promptText: string, sampling: Sampling, signal?: AbortSignal): Promise<Generation> {
    if (!this.knows(name)) throw new EngineRequestError(`The model \`${name}\` does not exist.`, 404, 'model', 'model_not_found');
    const prompt = this.tokenize(promptText);
    if (prompt.length === 0) throw new EngineRequestError('the prompt is empty', 400, 'messages');
    if (prompt.length + sampling.maxTokens > this.contextSize) {
      throw new EngineRequestError(
        `This model's maximum context length is ${this.contextSize} tokens. However, you requested ` +
          `${prompt.length + sampling.maxTokens} tokens (${prompt.length} in the messages, ${sampling.maxTokens} in the completion).`,
        400,
        'max_tokens',
      );
    }
    const started = performance.now();
    const slot = await this.slot(name);
    const choices: Choice[] = new Array(sampling.n);
    let next = 0;
    const worker = async (sequence: LlamaContextSequence) => {
      for (let index = next++; index < sampling.n; index = next++) {
        if (signal?.aborted) throw new GenerationAborted('the client closed the connection');
        choices[index] = await this.sampleOne(sequence, prompt, sampling, index, signal);
      }
    };
    // Waves: take the free sequences (up to n), share one prefill, decode them together.
    while (next < sampling.n) {
      const sequences = await slot.pool.acquire(sampling.n - next);
      try {
        await this.prefill(sequences, prompt.slice(0, -1));
        await Promise.all(sequences.map(worker));
      } finally {
        slot.pool.release(sequences);
      }
    }
    slot.lastUsed = Date.now();
    return { choices, promptTokens: prompt.length, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Brings every sequence to exactly `prefix` in its KV cache: the sequence that already
   * shares most of it evaluates the rest, the others copy its state (a memory copy, no compute).
   */
  private async prefill(sequences: LlamaContextSequence[], prefix: Token[]): Promise<void> {
    const shared = sequences.map((sequence) => commonPrefix(sequence.contextTokens, prefix));
    const donorIndex = shared.indexOf(Math.max(...shared));
    const donor = sequences[donorIndex]!;
    await donor.adaptStateToTokens(prefix, false);
    const rest = prefix.slice(donor.nextTokenIndex);
    if (rest.length) await donor.evaluateWithoutGeneratingNewTokens(rest);
    for (const [i, sequence] of sequences.entries()) {
      if (sequence === donor) continue;
      if (shared[i] === prefix.length) {
        await sequence.adaptStateToTokens(prefix, false);
        continue;
      }
      // node-llama-cpp keeps KV copying internal (llama_memory_seq_cp); pinned version, covered by tests.
      const copied = await (sequence as unknown as CopyableSequence)._copyStateFromOtherSequence(donor, prefix.length);
      if (!copied) {
        await sequence.clearHistory();
        if (prefix.length) await sequence.evaluateWithoutGeneratingNewTokens(prefix);
      }
    }
  }

  private async sampleOne(sequence: LlamaContextSequence, prompt: Token[], s: Sampling, index: number, signal?: AbortSignal): Promise<Choice> {
    const prefix = prompt.slice(0, -1);
    await sequence.adaptStateToTokens(prefix, false); // drops the previous choice's tokens
    if (sequence.nextTokenIndex < prefix.length) await sequence.evaluateWithoutGeneratingNewTokens(prefix.slice(sequence.nextTokenIndex));
    const tokens: Token[] = [];
    let finishReason: Choice['finishReason'] = 'stop';
    let text = '';
    const greedy = s.temperature === 0;
    const generator = sequence.evaluate(prompt.slice(-1), {
      temperature: s.temperature,
      topP: greedy ? undefined : s.topP,
      topK: greedy ? undefined : s.topK > 0 ? s.topK : 0,
      // Without a seed llama.cpp seeds from the clock, which would give parallel choices the same one.
      seed: (s.seed ?? randomSeed()) + index,
    });
    for await (const token of generator) {
      if (signal?.aborted) throw new GenerationAborted('the client closed the connection');
      tokens.push(token);
      if (s.stop.length) {
        const cut = cutAtStop(this.model.detokenize(tokens), s.stop);
        if (cut.stopped) {
          text = cut.text;
          return { text, finishReason: 'stop', completionTokens: tokens.length };
        }
      }
      if (tokens.length >= s.maxTokens) {
        finishReason = 'length';
        break;
      }
    }
    text = this.model.detokenize(tokens);
    // The end-of-generation token was produced too (vLLM counts it).
    return { text, finishReason, completionTokens: tokens.length + (finishReason === 'stop' ? 1 : 0) };
  }

  async dispose(): Promise<void> {
    for (const slot of this.slots.values()) await slot.context.dispose();
    this.slots.clear();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}

interface CopyableSequence {
  _copyStateFromOtherSequence(other: LlamaContextSequence, upToTokenIndex: number): Promise<boolean>;
}
