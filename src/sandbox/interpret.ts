/**
 * What one run of the Python runner amounts to (pure). The runner is trusted code, but it
 * relays a candidate's output, so its stdout is treated as untrusted bytes too: anything
 * that cannot be read as a result becomes a classified failure of that candidate, never
 * an infrastructure error. Only what the runner itself says is wrong with the machine (an
 * `error` event), or a runner that left no trace at all, is infrastructure.
 */
import { RunnerEvent, type SandboxFailure, type SandboxKind, type SandboxOutcome } from '../core/sandbox';
import { storableText } from '../core/storable-text';

export interface RunnerExit {
  code: number | null;
  signal: string | null;
}

export interface RunnerRun {
  kind: SandboxKind;
  lines: readonly string[];
  exit: RunnerExit;
  stderrTail: string;
  /** Set when the client had to stop reading (a line or the whole output too long). */
  overflow?: string;
}

export type Interpretation =
  | { type: 'outcome'; outcome: SandboxOutcome; ignoredLines: number }
  | { type: 'infra'; message: string; retryable: boolean };

const MESSAGE_CHARS = 2000;

function describeIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.map(String).join('.')}: ${issue.message}`)
    .join('; ');
}

/** A complete outcome for a candidate whose run produced no usable result. */
export function failedOutcome(kind: SandboxKind, failure: SandboxFailure, stderrTail: string): SandboxOutcome {
  const base = {
    ok: false,
    failure: { ...failure, message: storableText(failure.message).slice(0, MESSAGE_CHARS) },
    dataset: null,
    warnings: [],
    timings: {},
    sandbox: null,
    logs: { stdout: '', stderr: storableText(stderrTail.slice(-16_384)), truncatedBytes: 0 },
    runnerVersion: 'unknown',
    torchVersion: null,
    claimed: [],
  };
  if (kind === 'validate') {
    return { ...base, kind, outputShape: null, params: null, flops: null, graph: null, structuralHash: null };
  }
  return {
    ...base,
    kind,
    accuracy: null,
    correct: null,
    testSize: null,
    trainImages: null,
    epochs: 1,
    batchSize: 1,
    device: null,
    bf16: null,
    channelsLast: null,
    threads: null,
    seed: 0,
    loss: null,
    params: null,
    flops: null,
  };
}

function crash(run: RunnerRun, why: string): Interpretation {
  const failure: SandboxFailure = { class: 'crash', stage: 'runner', message: `the runner's output could not be read: ${why}` };
  return { type: 'outcome', outcome: failedOutcome(run.kind, failure, run.stderrTail), ignoredLines: 0 };
}

export function interpretRun(run: RunnerRun): Interpretation {
  const results: SandboxOutcome[] = [];
  let error: { message: string; retryable: boolean } | undefined;
  let unreadable: string | undefined;
  let ignored = 0;
  for (const line of run.lines) {
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch {
      unreadable ??= `a non-JSON line: ${line.slice(0, 200)}`;
      continue;
    }
    const parsed = RunnerEvent.safeParse(payload);
    if (!parsed.success) {
      const isResult = typeof payload === 'object' && payload !== null && (payload as { event?: unknown }).event === 'result';
      if (isResult) unreadable ??= `a result that fails its schema (${describeIssues(parsed.error)})`;
      else ignored += 1; // a malformed progress event is dropped, not fatal
      continue;
    }
    const event = parsed.data;
    if (event.event === 'result') results.push(event.result);
    else if (event.event === 'error') error ??= event;
  }
  if (error) return { type: 'infra', message: storableText(error.message).slice(0, MESSAGE_CHARS), retryable: error.retryable };
  if (run.overflow) return crash(run, run.overflow);
  if (results.length > 1) return crash(run, `${results.length} result events`);
  const [result] = results;
  if (result) {
    if (result.kind !== run.kind) return crash(run, `a ${result.kind} result to a ${run.kind} request`);
    return { type: 'outcome', outcome: result, ignoredLines: ignored };
  }
  if (unreadable) return crash(run, unreadable);
  // No result and nothing unreadable: the runner died on its own (killed, out of memory,
  // a bug). Infrastructure, and worth a retry.
  const how = run.exit.signal ?? `code ${run.exit.code}`;
  return {
    type: 'infra',
    message: `runner exited (${how}) without a result; stderr: ${storableText(run.stderrTail.slice(-MESSAGE_CHARS))}`,
    retryable: true,
  };
}
