/** Temporal client helpers shared by the CLI commands (and usable from any Node program). */
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { TASK_QUEUES } from '../activities/contract';
import type { RunConfig } from '../core/config';
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

export async function startRun(client: Client, config: RunConfig, runId = newRunId()): Promise<string> {
  await client.workflow.start<typeof designRun>('designRun', {
    taskQueue: TASK_QUEUES.control,
    workflowId: runId,
    args: [{ config }],
    typedSearchAttributes: [{ key: searchAttributes.preset, value: config.preset }],
    staticSummary: `${config.name}: ${config.cycles} cycles × ${config.sampling.samplesPerCycle} programs on ${config.dataset.name}`,
  });
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
