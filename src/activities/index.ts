/** The real activities, grouped by the task queue whose worker registers them. */
import type { QueueName } from './contract';
import type { BookkeepingActivities, ControlActivities, GpuActivities } from './contract';
import { getPool } from '../db/pool';
import { createBookkeepingActivities } from './bookkeeping';

export function createActivities(): Record<QueueName, object> {
  const pool = getPool();
  const control: BookkeepingActivities & Partial<ControlActivities> = {
    ...createBookkeepingActivities({ pool }),
  };
  const gpu: Partial<GpuActivities> = {};
  return { control, gpu };
}
