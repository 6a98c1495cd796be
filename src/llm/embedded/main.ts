/**
 * The embedded LLM server process (started by `archloop services up`):
 *
 *   node --import tsx src/llm/embedded/main.ts --model FILE.gguf --served-name NAME
 *        [--host 127.0.0.1] [--port 8008] [--threads 2] [--parallel 8] [--context 4096]
 *        [--adapters-root DIR]
 *
 * Logs are JSON lines on stderr.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { artifactsDir, PYTHON_SRC, pythonBin } from '../../env';
import { GGUF_ADAPTER_FILE } from './adapters';
import { Engine } from './engine';
import { createApp } from './server';

const run = promisify(execFile);

export const SERVER_MARKER = 'src/llm/embedded/main.ts';

function log(event: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), event, ...fields })}\n`)
}

/** PEFT adapter directory → GGUF LoRA (python/archloop/lora/gguf.py), one conversion at a time. */
function adapterConverter(baseGguf: string): (adapterDir: string) => Promise<string> {
  let queue: Promise<unknown> = Promise.resolve();
  return (adapterDir) => {
    const out = path.join(adapterDir, GGUF_ADAPTER_FILE);
    const task = queue.then(async () => {
      const started = performance.now();
      await run(pythonBin(), ['-m', 'archloop.lora.gguf', '--adapter', adapterDir, '--base', baseGguf, '--out', out], {
        env: { ...process.env, PYTHONPATH: PYTHON_SRC },
        timeout: 10 * 60_000,
      }).catch((error: Error & { stderr?: string }) => {
        throw new Error(`converting ${adapterDir} to GGUF failed: ${(error.stderr || error.message).trim().split('\n').pop()}`);
      });
      log('adapter converted', { adapterDir, out, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) });
      return out;
    });
    queue = task.catch(() => undefined);
    return task;
  };
}

async function main(argv: string[]): Promise<void> {
  const opts = new Command('archloop-llm-server')
    .requiredOption('--model <file>', 'GGUF weights')
    .requiredOption('--served-name <name>', 'model name clients ask for')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port', '8008')
    .option('--threads <n>', 'CPU threads', '2')
    .option('--parallel <n>', 'sequences decoded together per model', '8')
    .option('--context <tokens>', 'tokens per sequence (prompt + completion)', '4096')
    .option('--adapters-root <dir>', 'the only directory adapters may be loaded from', artifactsDir())
    .parse(argv)
    .opts<{ model: string; servedName: string; host: string; port: string; threads: string; parallel: string; context: string; adaptersRoot: string }>();

  const started = performance.now();
  const engine = await Engine.load({
    modelPath: path.resolve(opts.model),
    servedName: opts.servedName,
    threads: Number(opts.threads),
    parallel: Number(opts.parallel),
    contextSize: Number(opts.context),
  });
  log('model loaded', {
    model: opts.model,
    servedName: opts.servedName,
    threads: Number(opts.threads),
    parallel: Number(opts.parallel),
    contextSize: engine.contextSize,
    gpu: engine.gpu,
    seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
  });
  mkdirSync(opts.adaptersRoot, { recursive: true });
  const server = createApp({ engine, adaptersRoot: path.resolve(opts.adaptersRoot), convertAdapter: adapterConverter(path.resolve(opts.model)), log });
  server.once('error', (error) => {
    log('fatal', { error: `cannot listen on ${opts.host}:${opts.port}: ${error.message}` }); // e.g. EADDRINUSE: services up tries another port
    process.exit(1);
  });
  server.listen(Number(opts.port), opts.host, () => log('listening', { url: `http://${opts.host}:${opts.port}/v1` }));
  const stop = (signal: string) => {
    log('stopping', { signal });
    server.close();
    void engine.dispose().finally(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main(process.argv).catch((error: unknown) => {
  log('fatal', { error: (error as Error).stack ?? String(error) });
  process.exit(1);
});
