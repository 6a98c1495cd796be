/** What the validate and train activities share: running the sandbox from inside an activity. */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { SandboxOutcome, SandboxRequest } from '../core/sandbox';
import { SandboxInfraError } from './errors';
import { runSandbox, type RunOptions } from './runner';

/** Runs the sandbox, heartbeating each progress event and honouring cancellation. */
export async function runInActivity(request: SandboxRequest, candidateId: number, runner: typeof runSandbox = runSandbox): Promise<SandboxOutcome> {
  const context = Context.current();
  const options: RunOptions = {
    signal: context.cancellationSignal,
    onProgress: (event) => context.heartbeat({ candidateId, stage: event.stage, elapsedS: event.elapsedS, images: event.images }),
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
