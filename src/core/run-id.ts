/**
 * What a run id may be, and the names derived from it: the directory segment of its
 * artifacts and the name each of its adapters is served under. The one home of the
 * valid-run-id rule, checked by the client before it starts a run and by bookkeeping when
 * a run registers (a run started from the Temporal CLI skips the client).
 */
import { sha256 } from './prompts';

/** A run id as one path segment; a hash suffix keeps sanitized ids apart (a/b vs a_b). */
export function safeSegment(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return safe === id ? id : `${safe}-${sha256(id).slice(0, 8)}`;
}

/** The name an adapter is served under: stable, so publishing twice loads it once. */
export function adapterModelName(runId: string, cycle: number): string {
  return `archloop-${safeSegment(runId)}-cycle-${cycle}`;
}

/** What the serving side (vLLM, the embedded server) accepts as an adapter name. */
export const ADAPTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$/;
/** Cycle numbers are reserved up to this many digits when a run id is checked. */
const CYCLE_DIGITS = 8;

/**
 * Why `runId` cannot name a run, or undefined when it can: every adapter the run publishes
 * is served as adapterModelName(runId, cycle), which must be a valid adapter name for any
 * cycle (the run can be extended while it runs).
 */
export function runIdProblem(runId: string): string | undefined {
  const longest = adapterModelName(runId, 10 ** CYCLE_DIGITS - 1);
  if (ADAPTER_NAME_PATTERN.test(longest)) return undefined;
  const room = 200 - adapterModelName('', 10 ** CYCLE_DIGITS - 1).length;
  const shown = runId.length > 40 ? `${runId.slice(0, 40)}…` : runId;
  return (
    `run id "${shown}" (${runId.length} characters) is too long to name its adapters ` +
    `(archloop-<runId>-cycle-<n> must match ${ADAPTER_NAME_PATTERN.source}): use at most ${room} characters ` +
    `(fewer when it holds characters other than A-Z a-z 0-9 . _ -, which are replaced and a hash added)`
  );
}
