/**
 * Runs `python -m archloop.runner <kind>`: writes the request on stdin, streams progress
 * events, enforces an outer timeout (the runner has its own; this one guards against the
 * runner itself hanging) and reads the result (interpret.ts: whatever a candidate makes
 * the runner print is that candidate's classified failure, never an infrastructure
 * error). The runner is spawned in its own process group (a timeout kills the group) and
 * dies with this process (it arms a parent-death signal against ARCHLOOP_PARENT_PID);
 * its sandbox dies with it (bwrap --die-with-parent).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PYTHON_SRC, pythonBin, stateDir } from '../env';
import { ProgressEvent, type SandboxOutcome, type SandboxRequest } from '../core/sandbox';
import { SandboxInfraError } from './errors';
import { interpretRun } from './interpret';
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

/** The runner's stdout is bounded: a graph of 50k nodes is ~10 MB; anything far beyond is not a result. */
const MAX_LINE_CHARS = 32 * 1024 * 1024;
const MAX_OUTPUT_CHARS = 64 * 1024 * 1024;
/** Passed through to the runner when set: proxies, the allotted GPUs, the unsafe-mode consent. */
const PASSED_ENV = ['ARCHLOOP_DATASETS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'CUDA_VISIBLE_DEVICES', 'ARCHLOOP_ALLOW_UNSAFE'];

/** The runner's environment: only what it needs (the sandboxed side gets even less). */
export function runnerEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env, parentPid = process.pid): Record<string, string> {
  const out: Record<string, string> = {
    PATH: env.PATH ?? '/usr/bin:/bin',
    PYTHONPATH: PYTHON_SRC,
    ARCHLOOP_HOME: stateDir(),
    ARCHLOOP_PARENT_PID: String(parentPid),
    LANG: 'C.UTF-8',
  };
  for (const key of PASSED_ENV) {
    const value = env[key];
    if (value !== undefined) out[key] = value;
  }
  return { ...out, ...extra };
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

  const lines: string[] = [];
  let overflow: string | undefined;
  let outputChars = 0;
  let stderrTail = '';
  const splitter = new LineSplitter((line) => {
    lines.push(line);
    const progress = progressOf(line);
    if (progress) options.onProgress?.(progress);
  }, MAX_LINE_CHARS);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    if (overflow) return;
    outputChars += chunk.length;
    try {
      if (outputChars > MAX_OUTPUT_CHARS) throw new Error(`more than ${MAX_OUTPUT_CHARS} characters of output`);
      splitter.push(chunk);
    } catch (error) {
      overflow = error instanceof Error ? error.message : String(error);
      killGroup();
    }
  });
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
  if (!overflow) splitter.end();

  if (options.signal?.aborted) throw new SandboxInfraError('sandbox run cancelled', true);
  if (timedOut) throw new SandboxInfraError(`runner did not finish within ${timeoutS} s; killed`, true);
  const verdict = interpretRun({ kind: request.kind, lines, exit, stderrTail, overflow });
  if (verdict.type === 'infra') throw new SandboxInfraError(verdict.message, verdict.retryable);
  return verdict.outcome;
}

/** Progress lines are short; a long line is the result, parsed once at the end. */
function progressOf(line: string): ProgressEvent | undefined {
  if (line.length > 4096) return undefined;
  try {
    const parsed = ProgressEvent.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
