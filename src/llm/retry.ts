/** Retries with capped exponential backoff and full jitter; honours a server's Retry-After. */
export interface RetryPolicy {
  /** Retries after the first attempt (attempts = retries + 1). */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface RetryHooks {
  isRetryable(error: unknown): boolean;
  /** Seconds the failure asked to wait, if any. */
  retryAfterS?(error: unknown): number | undefined;
  onRetry?(info: { attempt: number; delayMs: number; error: unknown }): void;
  signal?: AbortSignal;
  random?: () => number;
}

export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  // Half fixed, half jitter: spread out clients that failed together, but never retry instantly.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.retries || !hooks.isRetryable(error) || hooks.signal?.aborted) throw error;
      const asked = hooks.retryAfterS?.(error);
      const delayMs =
        asked !== undefined ? Math.min(policy.maxDelayMs, asked * 1000) : backoffDelayMs(policy, attempt, hooks.random);
      hooks.onRetry?.({ attempt: attempt + 1, delayMs, error });
      await sleep(delayMs, hooks.signal);
    }
  }
}
