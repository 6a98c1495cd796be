/**
 * Test doubles for the compute stages, for tests about orchestration (workflows, workers,
 * durability), not about the stages themselves. They write the same rows the real stages
 * write, with idempotent keys, so row counts after a crash are meaningful. Bookkeeping is
 * the real implementation.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { createBookkeepingActivities } from '../../src/activities/bookkeeping';
import type { BookkeepingActivities, ControlActivities, GpuActivities } from '../../src/activities/index';
import type { QueueName } from '../../src/core/task-queues';

export interface MockOptions {
  /** Milliseconds each training activity takes (heartbeating every 100 ms). */
  trainMs?: number;
  /** Called when a training activity starts (e.g. to kill the worker mid-activity). */
  onTrainStart?: (candidateId: number) => void;
}

/** Deterministic fake outcomes keyed by sample index: every third program is invalid at first; its repair is valid. */
export const mockValid = (index: number, attempt = 0) => index % 3 !== 2 || attempt > 0;
export const mockAccuracy = (index: number) => 0.3 + ((index * 37) % 30) / 100;

export function createMockActivities(pool: pg.Pool, options: MockOptions = {}): Record<QueueName, object> {
  const rowOf = async (candidateId: number) =>
    (await pool.query<{ sample_index: number; attempt: number }>('SELECT sample_index, attempt FROM candidates WHERE id = $1', [candidateId]))
      .rows[0]!;
  const indexOf = async (candidateId: number) => (await rowOf(candidateId)).sample_index;

  const control: Omit<ControlActivities, keyof BookkeepingActivities> = {
    async sampleBatch({ runId, cycle, model, firstIndex, count }) {
      const ids: number[] = [];
      for (let index = firstIndex; index < firstIndex + count; index++) {
        const { rows } = await pool.query<{ id: number }>(
          `INSERT INTO candidates (run_id, cycle, sample_index, model, completion, code)
           VALUES ($1, $2, $3, $4, 'mock completion', 'class Net: pass')
           ON CONFLICT (run_id, cycle, sample_index, attempt) DO UPDATE SET updated_at = now()
           RETURNING id`,
          [runId, cycle, index, model],
        );
        ids.push(rows[0]!.id);
      }
      return { candidateIds: ids, extracted: ids.length };
    },
    async validateCandidate({ candidateId }) {
      const row = await rowOf(candidateId);
      const valid = mockValid(row.sample_index, row.attempt);
      await pool.query(
        `UPDATE candidates SET valid = $2, status = $3, failure_class = $4 WHERE id = $1`,
        [candidateId, valid, valid ? 'valid' : 'invalid', valid ? null : 'shape'],
      );
      return { candidateId, valid, failureClass: valid ? null : 'shape' };
    },
    async repairCandidate({ candidateId }) {
      const { rows } = await pool.query<{ id: number; attempt: number }>(
        `INSERT INTO candidates (run_id, cycle, sample_index, attempt, parent_id, model, completion, code)
         SELECT run_id, cycle, sample_index, attempt + 1, id, model, 'mock repair', 'class Net: pass' FROM candidates WHERE id = $1
         ON CONFLICT (run_id, cycle, sample_index, attempt) DO UPDATE SET updated_at = now()
         RETURNING id, attempt`,
        [candidateId],
      );
      return { candidateId: rows[0]!.id, attempt: rows[0]!.attempt };
    },
    async checkNovelty({ runId, cycle }) {
      const { rowCount } = await pool.query(
        `UPDATE candidates SET novel = true, status = 'novel' WHERE run_id = $1 AND cycle = $2 AND accuracy IS NOT NULL`,
        [runId, cycle],
      );
      return { checked: rowCount ?? 0, novel: rowCount ?? 0, duplicates: 0 };
    },
    async selectAndAdmit({ runId, cycle }) {
      const { rowCount } = await pool.query(
        `UPDATE candidates SET admitted = true, status = 'admitted'
          WHERE run_id = $1 AND cycle = $2 AND novel AND accuracy >= 0.4`,
        [runId, cycle],
      );
      return { admitted: rowCount ?? 0, threshold: 0.4, fallbackUsed: false };
    },
    async checkEndpoint() {
      return { models: ['mock'], n: true, loraApi: true };
    },
    async checkSeedCorpus() {
      return { kept: 1, checked: 1, rejected: {} };
    },
    async publishAdapter({ adapterId }) {
      return { model: `mock-adapter-${adapterId}` };
    },
  };

  const gpu: GpuActivities = {
    async trainCandidate({ candidateId }) {
      options.onTrainStart?.(candidateId);
      const ms = options.trainMs ?? 0;
      for (let waited = 0; waited < ms; waited += 100) {
        Context.current().heartbeat({ waited });
        await sleep(Math.min(100, ms - waited));
      }
      const accuracy = mockAccuracy(await indexOf(candidateId));
      await pool.query(`UPDATE candidates SET accuracy = $2, status = 'trained' WHERE id = $1`, [candidateId, accuracy]);
      return { candidateId, accuracy, failureClass: null };
    },
    async fineTuneLora({ runId, cycle, previousAdapterId }) {
      const { rows } = await pool.query<{ id: number }>(
        `INSERT INTO adapters (run_id, cycle, path, base_model, parent_id, status)
         VALUES ($1, $2, '/dev/null', 'mock', $3, 'trained')
         ON CONFLICT (run_id, cycle) DO UPDATE SET status = 'trained' RETURNING id`,
        [runId, cycle, previousAdapterId],
      );
      return { adapterId: rows[0]!.id, steps: 1, finalLoss: 0.5, pairs: 1 };
    },
  };

  return { control: { ...createBookkeepingActivities({ pool }), ...control }, gpu };
}
