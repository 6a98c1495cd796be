/**
 * Classified LLM endpoint failures. `retryable` separates what waiting can fix (endpoint
 * down, overloaded, 5xx, timeouts) from what a person must fix (URL, model name, key).
 */
export type LlmErrorKind =
  | 'unreachable'
  | 'timeout'
  | 'rate-limited'
  | 'server-error'
  | 'bad-response'
  | 'auth'
  | 'unknown-model'
  | 'no-api'
  | 'bad-request';

const RETRYABLE: ReadonlySet<LlmErrorKind> = new Set(['unreachable', 'timeout', 'rate-limited', 'server-error', 'bad-response']);

export class LlmError extends Error {
  override name = 'LlmError';
  readonly retryable: boolean;

  constructor(
    readonly kind: LlmErrorKind,
    message: string,
    readonly status?: number,
    /** Seconds the server asked us to wait (Retry-After), when it said. */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.retryable = RETRYABLE.has(kind);
  }
}
