/**
 * Runs `python -m archloop.runner <kind>`: writes the request on stdin, streams progress
 * events, enforces an outer timeout (the runner has its own; this one guards against the
 * runner itself hanging) and parses the result with zod. The runner kills its sandbox when
 * it dies (bwrap --die-with-parent), so killing the runner's process group is enough.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PYTHON_SRC, pythonBin, stateDir } from '../env';
import { RunnerEvent, type ProgressEvent, type SandboxOutcome, type SandboxRequest } from '../core/sandbox';
import { SandboxInfraError } from './errors';
import { LineSplitter } from './lines';
import { outerTimeoutS } from './request';

export interface RunOptions {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  python?: string;
  /** Overrides the outer timeout (seconds). */
  timeoutS?: number;
  /** Extra environment for the runner process (e.g. ARCHLOOP_DATASETS in tests). */
  env?: Record<string, string>;
}

/** The runner's environment: only what it needs (the sandboxed side gets even less). */
function runnerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PYTHONPATH: PYTHON_SRC,
    ARCHLOOP_HOME: stateDir(),
    LANG: 'C.UTF-8',
  };
  for (const key of ['ARCHLOOP_DATASETS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']) {
    const value = process.env[key];
    if (value) env[key] = value;
  }
  return { ...env, ...extra };
}

export async function runSandbox(request: SandboxRequest, options: RunOptions = {}): Promise<SandboxOutcome> {
  const python = options.python ?? pythonBin();
  if (!existsSync(python)) {
    throw new SandboxInfraError(`Python runner not found at ${python} (run scripts/setup.sh or set ARCHLOOP_PYTHON)`);
  }
  const args = ['-m', 'archloop.runner', request.kind];
  if (request.sandbox.mode === 'none') args.push('--unsafe-no-sandbox');
  const child = spawn(python, args, {
    cwd: PYTHON_SRC,
    env: runnerEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // own process group: a timeout kills the runner and everything it started
  });
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };

  let result: SandboxOutcome | undefined;
  let runnerError: string | undefined;
  let protocolError: string | undefined;
  let stderrTail = '';
  const splitter = new LineSplitter((line) => {
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch {
      protocolError ??= `runner wrote a non-JSON line: ${line.slice(0, 200)}`;
      return;
    }
    const parsed = RunnerEvent.safeParse(payload);
    if (!parsed.success) {
      protocolError ??= `runner event failed validation: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
      return;
    }
    const event = parsed.data;
    if (event.event === 'progress') options.onProgress?.(event);
    else if (event.event === 'result') result = event.result;
    else runnerError = event.message;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => splitter.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-8192);
  });

  const timeoutS = options.timeoutS ?? outerTimeoutS(request);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutS * 1000);
  const onAbort = () => killGroup();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
    child.stdin.on('error', () => undefined); // the runner may exit before reading everything
    child.stdin.end(JSON.stringify(request));
  }).finally(() => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  });
  splitter.end();

  if (options.signal?.aborted) throw new SandboxInfraError('sandbox run cancelled', true);
  if (timedOut) throw new SandboxInfraError(`runner did not finish within ${timeoutS} s; killed`, true);
  if (runnerError) throw new SandboxInfraError(runnerError);
  if (result) return result;
  throw new SandboxInfraError(
    `runner exited (${exit.signal ?? exit.code}) without a result${protocolError ? `: ${protocolError}` : ''}; stderr: ${stderrTail.slice(-2000)}`,
    true,
  );
}
