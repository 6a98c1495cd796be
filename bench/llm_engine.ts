/**
 * Tokens per second of the embedded server against the bare engine, same model and prompt,
 * interleaved in one run (a ratio is stable on a busy machine; absolute numbers are not):
 *
 *   node --import tsx bench/llm_engine.ts --model FILE.gguf [--n 8] [--tokens 128] [--rounds 2] [--threads 2]
 *
 * bare   = node-llama-cpp alone: one context with n sequences, each evaluating the prompt
 *          and sampling `tokens` tokens, decoded together in one batch;
 * server = the embedded server (src/llm/embedded) over HTTP: one chat request with n choices.
 * Prints one JSON line per measurement and a summary; CPU seconds are the process's own.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Command } from 'commander';
import { REPO_ROOT } from '../src/env';
import { buildConfig } from '../src/core/config';
import { renderDesignPrompt, taskFromConfig } from '../src/core/prompts';
import { loadPromptTemplate } from '../src/llm/prompt-files';
import { chatTemplate } from '../src/llm/embedded/chat';

type NodeLlamaCpp = typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' } });

interface Measurement {
  variant: 'bare' | 'server';
  round: number;
  tokens: number;
  seconds: number;
  tokensPerS: number;
  cpuS: number;
}

async function bare(modelPath: string, promptText: string, n: number, tokens: number, threads: number, round: number): Promise<Measurement> {
  const lib: NodeLlamaCpp = await import('node-llama-cpp');
  const llama = await lib.getLlama({ gpu: false, build: 'never', maxThreads: threads, logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences: n, contextSize: 4096, threads });
  const prompt = model.tokenize(promptText, true);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let total = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const sequence = context.getSequence();
      let k = 0;
      for await (const _token of sequence.evaluate(prompt, { temperature: 0.7, topP: 0.95, topK: 100, seed: 1000 + i })) {
        if (++k >= tokens) break;
      }
      total += k;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { variant: 'bare', round, tokens: total, seconds, tokensPerS: total / seconds, cpuS: (used.user + used.system) / 1e6 };
}

async function startServer(modelPath: string, n: number, threads: number, port: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'src/llm/embedded/main.ts'), '--model', modelPath, '--served-name', 'bench', '--port', String(port), '--threads', String(threads), '--parallel', String(n), '--context', '4096'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (chunk) => (log += chunk));
  for (let i = 0; i < 600; i++) {
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) return { child, log: () => log };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`server did not start: ${log}`);
}

async function server(port: number, userText: string, n: number, tokens: number, round: number, log: () => string): Promise<Measurement> {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: userText }], n, max_tokens: tokens, temperature: 0.7, top_p: 0.95, top_k: 100, seed: 1000}),
    signal: AbortSignal.timeout(3_600_000),
  });
  const body = (await response.json()) as { usage: { completion_tokens: number } };
  const seconds = (performance.now() - started) / 1000;
  const lines = log().trim().split('\n').filter((line) => line.includes('"generated"'));
  const cpuS = Number(JSON.parse(lines[lines.length - 1]!).cpuS);
  const total = body.usage.completion_tokens;
  return { variant: 'server', round, tokens: total, seconds, tokensPerS: total / seconds, cpuS };
}

async function main(): Promise<void> {
  const opts = new Command()
    .requiredOption('--model <file>')
    .option('--n <n>', 'choices per request', '8')
    .option('--tokens <n>', 'new tokens per choice', '128')
    .option('--rounds <n>', 'bare/server pairs', '2')
    .option('--threads <n>', 'CPU threads', '2')
    .option('--port <n>', 'server port', '8197')
    .parse()
    .opts<{ model: string; n: string; tokens: string; rounds: string; threads: string; port: string }>();
  const n = Number(opts.n);
  const tokens = Number(opts.tokens);
  const threads = Number(opts.threads);
  const config = buildConfig('demo', {});
  const userText = renderDesignPrompt(loadPromptTemplate('design-v2'), taskFromConfig(config), undefined, { prefill: false }).body;
  // The bare engine gets exactly the text the server renders (the GGUF's own chat template).
  const lib: NodeLlamaCpp = await import('node-llama-cpp');
  const info = await lib.readGgufFileInfo(opts.model);
  const template = (info.metadata.tokenizer as { chat_template?: string }).chat_template;
  const promptText = chatTemplate(template, { bos: '', eos: '' }).render([{ role: 'user', content: userText }], { continueFinal: false });

  const results: Measurement[] = [];
  const port = Number(opts.port);
  const served = await startServer(opts.model, n, threads, port);
  try {
    for (let round = 0; round < Number(opts.rounds); round++) {
      for (const variant of ['bare', 'server'] as const) {
        const m = variant === 'bare' ? await bare(opts.model, promptText, n, tokens, threads, round) : await server(port, userText, n, tokens, round, served.log);
        results.push(m);
        console.log(JSON.stringify(m));
      }
    }
  } finally {
    served.child.kill('SIGTERM');
  }
  const mean = (variant: string, key: 'tokensPerS' | 'cpuS' | 'tokens') => {
    const xs = results.filter((r) => r.variant === variant).map((r) => r[key]);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  console.log(
    JSON.stringify({
      summary: true,
      model: path.basename(opts.model),
      n,
      tokens,
      threads,
      bareTokensPerS: mean('bare', 'tokensPerS'),
      serverTokensPerS: mean('server', 'tokensPerS'),
      ratio: mean('server', 'tokensPerS') / mean('bare', 'tokensPerS'),
      bareTokensPerCpuS: mean('bare', 'tokens') / mean('bare', 'cpuS'),
      serverTokensPerCpuS: mean('server', 'tokens') / mean('server', 'cpuS'),
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
