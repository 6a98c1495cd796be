/** The real activities, grouped by the task queue whose worker registers them. */
import { getPool } from '../db/pool';
import { createBookkeepingActivities } from './bookkeeping';
import type { QueueName } from '../core/task-queues';
import type { BookkeepingActivities, ControlActivities, GpuActivities } from './contract';
import { createFineTuneActivities } from './finetune';
import { createNoveltyActivities } from './novelty';
import { createPublishActivities } from './publish';
import { createRepairActivities } from './repair';
import { createSeedActivities } from './seeds';
import { createEndpointActivities } from './endpoint';
import { createSampleActivities } from './sample';
import { createSelectActivities } from './select';
import { createTrainActivities, createValidateActivities } from './sandbox-stages';


export function createActivities(): Record<QueueName, object> {
  const deps = { pool: getPool() };
  const control: BookkeepingActivities & ControlActivities = {
    ...createBookkeepingActivities(deps),
    ...createSampleActivities(deps),
    ...createValidateActivities(deps),
    ...createRepairActivities(deps),
    ...createSeedActivities(deps),
    ...createEndpointActivities(deps),
    ...createNoveltyActivities(deps),
    ...createSelectActivities(deps),
    ...createPublishActivities(deps),
  };
  const gpu: GpuActivities = {
    ...createTrainActivities(deps),
    ...createFineTuneActivities(deps),
  };
  return { control, gpu };
}
