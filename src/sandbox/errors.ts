/** Errors of the sandbox machinery itself (never a candidate's fault). */
export class SandboxInfraError extends Error {
  override name = 'SandboxInfraError';

  /** retryable: a transient problem (runner hung or died); otherwise the machine needs fixing. */
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}
