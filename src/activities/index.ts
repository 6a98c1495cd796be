/**
 * The real activities, grouped by the task queue whose worker registers them. Their types
 * are read from these implementations (`typeof`), as the workflows' proxies use them
 * (src/workflows/activities.ts): no signature is written down twice.
 */
import type pg from 'pg';
import { getPool } from '../db/pool';
import { createBookkeepingActivities } from './bookkeeping';
import { createEndpointActivities } from './endpoint';
import { createFineTuneActivities } from './finetune';
import { createGateActivities } from './gate';
import { createNoveltyActivities } from './novelty';
import { createPublishActivities } from './publish';
import { createRepairActivities } from './repair';
import { createSampleActivities } from './sample';
import { createTrainActivities, createValidateActivities } from './sandbox-stages';
import { createSeedActivities } from './seeds';
import { createSelectActivities } from './select';

export interface ActivityDeps {
  pool: pg.Pool;
}

/** Run bookkeeping (control queue): rows in `runs` and `cycles`, metrics. */
export type BookkeepingActivities = ReturnType<typeof createBookkeepingActivities>;

/** The `archloop-control` queue: bookkeeping, LLM calls, validation, novelty, selection, publishing, the checks before cycle 0. */
export function controlActivities(deps: ActivityDeps) {
  return {
    ...createBookkeepingActivities(deps),
    ...createSampleActivities(deps),
    ...createValidateActivities(deps),
    ...createRepairActivities(deps),
    ...createSeedActivities(deps),
    ...createEndpointActivities(deps),
    ...createNoveltyActivities(deps),
    ...createSelectActivities(deps),
    ...createPublishActivities(deps),
    ...createGateActivities(deps),
  };
}
export type ControlActivities = ReturnType<typeof controlActivities>;

/** The `archloop-gpu` queue: training candidates, LoRA fine-tuning. */
export function gpuActivities(deps: ActivityDeps) {
  return {
    ...createTrainActivities(deps),
    ...createFineTuneActivities(deps),
  };
}
export type GpuActivities = ReturnType<typeof gpuActivities>;

export function createActivities(): { control: ControlActivities; gpu: GpuActivities } {
  const deps = { pool: getPool() };
  return { control: controlActivities(deps), gpu: gpuActivities(deps) };
}
