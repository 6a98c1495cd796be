/** Temporal glue of the sandbox stages: running the sandbox from inside an activity. */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { ProgressEvent, SandboxOutcome, SandboxRequest } from '../core/sandbox';
import { SandboxInfraError } from '../sandbox/errors';
import { storableText } from '../core/storable-text';
import { runSandbox, type RunOptions } from '../sandbox/runner';

export interface HeartbeatDetails {
  candidateId: number;
  stage: string;
  elapsedS?: number;
  images?: number;
}

const STAGE_CHARS = 32;

function finite(value: number | undefined): number | undefined {
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/**
 * Heartbeat details from a progress event: a few bounded fields, whatever the event held
 * (progress events relay a candidate's process, and Temporal caps payloads at 2 MB).
 */
export function heartbeatDetails(candidateId: number, event: ProgressEvent): HeartbeatDetails {
  const details: HeartbeatDetails = { candidateId, stage: storableText(event.stage.slice(0, STAGE_CHARS)) };
  const elapsedS = finite(event.elapsedS);
  const images = finite(event.images);
  if (elapsedS !== undefined) details.elapsedS = elapsedS;
  if (images !== undefined) details.images = images;
  return details;
}

/** Runs the sandbox, heartbeating each progress event and honouring cancellation. */
export async function runInActivity(request: SandboxRequest, candidateId: number, runner: typeof runSandbox = runSandbox): Promise<SandboxOutcome> {
  const context = Context.current();
  const options: RunOptions = {
    signal: context.cancellationSignal,
    onProgress: (event) => context.heartbeat(heartbeatDetails(candidateId, event)),
  };
  try {
    return await runner(request, options);
  } catch (error) {
    if (error instanceof SandboxInfraError) {
      log.error('sandbox infrastructure error', { candidateId, kind: request.kind, message: error.message, retryable: error.retryable });
      if (error.retryable) throw ApplicationFailure.retryable(error.message, 'SandboxInfraError');
      throw ApplicationFailure.nonRetryable(error.message, 'SandboxInfraError');
    }
    throw error;
  }
}
