/** Temporal glue shared by the LLM-side activities: keep-alive heartbeats, failure mapping. */
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { LlmError } from '../llm/errors';
import { SelfSeedMissing } from '../llm/finetune-pairs';

/**
 * Heartbeats every third of the heartbeat timeout while a long call (an LLM request, a
 * trainer step) is in flight, so the server neither times the activity out nor misses a
 * cancellation. Returns the function that stops it.
 */
export function keepAlive(details: () => unknown): () => void {
  const timeoutMs = activityInfo().heartbeatTimeoutMs ?? 0;
  const everyMs = timeoutMs > 0 ? Math.max(1000, timeoutMs / 3) : 10_000;
  const timer = setInterval(() => Context.current().heartbeat(details()), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * An exhausted transient failure stays retryable (Temporal retries the activity later;
 * the run waits, nothing is lost); a wrong URL, model or key is not.
 */
export function llmFailure(error: unknown): unknown {
  if (!(error instanceof LlmError)) return error;
  // 'unknown-model' → 'LlmUnknownModel': failure types are PascalCase, like the other stages'.
  const type = `Llm${error.kind.replace(/(^|-)(\w)/g, (_, _dash: string, letter: string) => letter.toUpperCase())}`;
  return error.retryable ? ApplicationFailure.retryable(error.message, type) : ApplicationFailure.nonRetryable(error.message, type);
}

/** A missing self-seed set is the user's step to take (`archloop seed-adapter --from self`), never retried. */
export function selfSeedFailure(error: unknown): never {
  if (error instanceof SelfSeedMissing) throw ApplicationFailure.nonRetryable(error.message, 'SelfSeedMissing');
  throw error;
}
