/**
 * Activity proxies with the timeouts and retry policies of a run's config. Workflow code
 * only; every duration comes from `config.orchestration`. Their types are the
 * implementations' own (`typeof`, src/activities/index.ts), imported as types only: no
 * activity code enters the workflow bundle.
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { BookkeepingActivities, ControlActivities, GpuActivities } from '../activities/index';
import { TASK_QUEUES } from '../core/task-queues';
import type { RunConfig } from '../core/config';

/** Error names (`Error.name`, which Temporal uses as the failure type) whose cause is in code or stored data. */
const NON_RETRYABLE_ERRORS = ['ConfigError', 'TemplateError', 'AdapterStatusError'];

function options(config: RunConfig, queue: string, startToCloseS: number, heartbeat: boolean): ActivityOptions {
  const o = config.orchestration;
  return {
    taskQueue: queue,
    startToCloseTimeout: `${startToCloseS}s`,
    // A worker that dies is noticed by its missing heartbeats, long before the stage timeout.
    ...(heartbeat ? { heartbeatTimeout: `${o.heartbeatTimeoutS}s` } : {}),
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '2m',
      maximumAttempts: o.maxAttempts,
      // Failures that no retry can fix are thrown as ApplicationFailure.nonRetryable where
      // they happen (e.g. InvalidConfig, AdapterNotReady); these are the plain errors that
      // escape an activity with a cause no retry changes.
      nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
    },
  };
}

export function stageActivities(config: RunConfig) {
  const o = config.orchestration;
  const control = TASK_QUEUES.control;
  const gpu = TASK_QUEUES.gpu;
  return {
    bookkeeping: proxyActivities<BookkeepingActivities>(options(config, control, 60, false)),
    sample: proxyActivities<Pick<ControlActivities, 'sampleBatch'>>(options(config, control, o.sampleTimeoutS, true)),
    validate: proxyActivities<Pick<ControlActivities, 'validateCandidate'>>(
      options(config, control, o.validateTimeoutS, true),
    ),
    repair: proxyActivities<Pick<ControlActivities, 'repairCandidate'>>(options(config, control, o.sampleTimeoutS, true)),
    novelty: proxyActivities<Pick<ControlActivities, 'checkNovelty' | 'selectAndAdmit'>>(
      options(config, control, o.noveltyTimeoutS, true),
    ),
    preflight: proxyActivities<Pick<ControlActivities, 'checkEndpoint' | 'checkSeedCorpus'>>(options(config, control, o.seedCheckTimeoutS, true)),
    publish: proxyActivities<Pick<ControlActivities, 'publishAdapter'>>(options(config, control, o.publishTimeoutS, false)),
    // Samples both models: as long as a fine-tune may take, heartbeating.
    gate: proxyActivities<Pick<ControlActivities, 'gateAdapter'>>(options(config, control, o.fineTuneTimeoutS, true)),
    train: proxyActivities<Pick<GpuActivities, 'trainCandidate'>>(options(config, gpu, o.trainTimeoutS, true)),
    fineTune: proxyActivities<Pick<GpuActivities, 'fineTuneLora'>>(options(config, gpu, o.fineTuneTimeoutS, true)),
  };
}
