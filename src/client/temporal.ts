/** Temporal client helpers shared by the CLI commands (and usable from any Node program). */
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { TASK_QUEUES } from '../core/task-queues';
import type { RunConfig } from '../core/config';
import { runIdProblem } from '../core/run-id';
import { temporalAddress, temporalNamespace, temporalUiUrl } from '../env';
import { progressQuery, searchAttributes, type RunProgress } from '../workflows/definitions';
import type { designRun } from '../workflows/designRun';

export async function connectClient(): Promise<Client> {
  const address = temporalAddress();
  const connection = await Connection.connect({ address, connectTimeout: 5000 }).catch((error: Error) => {
    throw new Error(`cannot reach Temporal at ${address} (${error.message}): run \`archloop services up\` or set TEMPORAL_ADDRESS`);
  });
  return new Client({ connection, namespace: temporalNamespace() });
}

/** e.g. run-20261129-142501-3fa2: sortable, readable, unique enough across machines. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomBytes(2).toString('hex')}`;
}

export function runUiUrl(runId: string): string {
  return `${temporalUiUrl()}/namespaces/${encodeURIComponent(temporalNamespace())}/workflows/${encodeURIComponent(runId)}`;
}

/** A run id that is taken (by a run Temporal knows, or one in the database). */
export class RunIdTakenError extends Error {
  override name = 'RunIdTakenError';
}

export class InvalidRunIdError extends Error {
  override name = 'InvalidRunIdError';
}

export interface StartOptions {
  /**
   * Start again under an id whose last execution failed, was terminated, cancelled or
   * timed out (resuming it: every stage is idempotent). Without it a used id is refused.
   */
  resume?: boolean;
}

/**
 * Starts designRun under `runId`. An id in use is refused (Temporal's REJECT_DUPLICATE),
 * so a second `run --id X` can never silently carry on under X's config and rows.
 */
export async function startRun(client: Client, config: RunConfig, runId = newRunId(), options: StartOptions = {}): Promise<string> {
  const problem = runIdProblem(runId);
  if (problem) throw new InvalidRunIdError(problem);
  try {
    await client.workflow.start<typeof designRun>('designRun', {
      taskQueue: TASK_QUEUES.control,
      workflowId: runId,
      args: [{ config }],
      workflowIdReusePolicy: options.resume ? 'ALLOW_DUPLICATE_FAILED_ONLY' : 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
      typedSearchAttributes: [{ key: searchAttributes.preset, value: config.preset }],
      staticSummary: `${config.name}: ${config.cycles} cycles × ${config.sampling.samplesPerCycle} programs on ${config.dataset.name}`,
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    const status = await client.workflow
      .getHandle(runId)
      .describe()
      .then((d) => d.status.name.toLowerCase())
      .catch(() => 'known to Temporal');
    const hint = status === 'running' ? `\`archloop run --resume ${runId}\` follows it` : status === 'completed' ? 'it is finished' : `\`archloop run --resume ${runId}\` starts it again`;
    throw new RunIdTakenError(`run id ${runId} is taken (a ${status} run): ${hint}; pick another --id for a new run`);
  }
  return runId;
}

export async function runProgress(client: Client, runId: string): Promise<RunProgress> {
  try {
    return await client.workflow.getHandle(runId).query(progressQuery);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new Error(`no run with id ${runId}`);
    throw error;
  }
}
