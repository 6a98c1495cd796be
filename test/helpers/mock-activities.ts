/**
 * Test doubles for the compute stages, for tests about orchestration (workflows, workers,
 * durability), not about the stages themselves. They write the rows the real stages write,
 * through the same src/db functions (idempotent keys, status guards), so row counts after a
 * crash are meaningful. Bookkeeping is the real implementation.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { createBookkeepingActivities } from '../../src/activities/bookkeeping';
import type { BookkeepingActivities, ControlActivities, GpuActivities } from '../../src/activities/index';
import type { QueueName } from '../../src/core/task-queues';
import type { TrainOutcome, ValidateOutcome } from '../../src/core/sandbox';
import { markAdapterReady, upsertTrainingAdapter } from '../../src/db/adapters';
import {
  candidatesForNovelty,
  markAdmitted,
  novelCandidates,
  noveltyCounts,
  recordNovelty,
  repairSource,
  storeCompletion,
  storeExtraction,
  storeStageResult,
} from '../../src/db/candidates';
import { storePrompt } from '../../src/db/prompts';

export interface MockOptions {
  /** Milliseconds each training activity takes (heartbeating every 100 ms). */
  trainMs?: number;
  /** Called when a training activity starts (e.g. to kill the worker mid-activity). */
  onTrainStart?: (candidateId: number) => void;
  /** Cycles whose new adapter the gate keeps out (lora.gate). */
  gateRejects?: number[];
}

/** Deterministic fake outcomes keyed by sample index: every third program is invalid at first; its repair is valid. */
export const mockValid = (index: number, attempt = 0) => index % 3 !== 2 || attempt > 0;
export const mockAccuracy = (index: number) => 0.3 + ((index * 37) % 30) / 100;

const MOCK_PROMPT = { template: 'mock', templateHash: 'mock', body: 'mock prompt', prefill: '', hash: 'mock-prompt' };

export function createMockActivities(pool: pg.Pool, options: MockOptions = {}): Record<QueueName, object> {
  /** A mock completion stored, then its "extracted" program (the real sampler's two writes). */
  const storeMock = async (completion: Parameters<typeof storeCompletion>[1]) => {
    await storePrompt(pool, MOCK_PROMPT);
    const id = await storeCompletion(pool, completion);
    await storeExtraction(pool, id, { ok: true, code: 'class Net: pass', source: 'fence', language: 'python' });
    return id;
  };

  const control: Omit<ControlActivities, keyof BookkeepingActivities> = {
    async sampleBatch({ runId, cycle, model, firstIndex, count }) {
      const ids: number[] = [];
      for (let index = firstIndex; index < firstIndex + count; index++) {
        const usage = { finishReason: 'stop' };
        ids.push(await storeMock({ runId, cycle, sampleIndex: index, model, promptHash: MOCK_PROMPT.hash, completion: 'mock completion', usage }));
      }
      return { candidateIds: ids, extracted: ids.length };
    },
    async validateCandidate({ candidateId }) {
      const row = await repairSource(pool, candidateId);
      const valid = mockValid(row.sample_index, row.attempt);
      const failureClass = valid ? null : 'shape';
      await storeStageResult(pool, candidateId, {
        stage: 'validate',
        row: {
          status: valid ? 'valid' : 'invalid',
          sandboxMode: null,
          valid,
          failureClass,
          failureMessage: null,
          validation: { mock: true } as unknown as Omit<ValidateOutcome, 'graph'>,
          graphIr: null,
          structuralHash: null,
          params: null,
          flops: null,
          timings: { validate: {} },
        },
      });
      return { candidateId, valid, failureClass };
    },
    async repairCandidate({ candidateId }) {
      const failed = await repairSource(pool, candidateId);
      const attempt = failed.attempt + 1;
      const id = await storeMock({
        runId: failed.run_id,
        cycle: failed.cycle,
        sampleIndex: failed.sample_index,
        attempt,
        parentId: failed.id,
        model: failed.model,
        promptHash: MOCK_PROMPT.hash,
        completion: 'mock repair',
        usage: { finishReason: 'stop' },
      });
      return { candidateId: id, attempt };
    },
    async checkNovelty({ runId, cycle }) {
      for (const candidate of await candidatesForNovelty(pool, runId, cycle)) {
        if (candidate.status === 'trained') await recordNovelty(pool, candidate.id, true, { mock: true });
      }
      return noveltyCounts(pool, runId, cycle);
    },
    async selectAndAdmit({ runId, cycle }) {
      const chosen = (await novelCandidates(pool, runId, cycle)).filter((candidate) => candidate.accuracy >= 0.4);
      for (const candidate of chosen) await markAdmitted(pool, candidate.id);
      return { admitted: chosen.length, threshold: 0.4, fallbackUsed: false };
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
    async gateAdapter({ cycle }) {
      if (options.gateRejects?.includes(cycle)) return { decision: 'keep-serving' as const, measured: true, reason: `mock: worse after cycle ${cycle}` };
      return { decision: 'publish' as const, measured: true, reason: 'mock: not worse' };
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
      const accuracy = mockAccuracy((await repairSource(pool, candidateId)).sample_index);
      await storeStageResult(pool, candidateId, {
        stage: 'train',
        row: {
          status: 'trained',
          sandboxMode: null,
          accuracy,
          failureClass: null,
          failureMessage: null,
          training: { mock: true } as unknown as TrainOutcome,
          timings: { train: {} },
        },
      });
      return { candidateId, accuracy, failureClass: null };
    },
    async fineTuneLora({ runId, cycle, previousAdapterId }) {
      const adapter = await upsertTrainingAdapter(pool, {
        runId,
        cycle,
        path: '/dev/null',
        baseModel: 'mock',
        parentId: previousAdapterId,
        dataHash: 'mock',
      });
      await markAdapterReady(pool, adapter.id, '/dev/null', {});
      return { adapterId: adapter.id, steps: 1, finalLoss: 0.5, pairs: 1 };
    },
  };

  return { control: { ...createBookkeepingActivities({ pool }), ...control }, gpu };
}
