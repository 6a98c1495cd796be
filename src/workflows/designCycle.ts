/**
 * One cycle of the loop, as a child workflow with id `<runId>/cycle-<n>`:
 * sample → (validate → train) per candidate → novelty → select → fine-tune → publish → metrics.
 * Cycle 0 is the seed fine-tune on the LEMUR corpus before any sampling.
 * Deterministic: no I/O here, only activities.
 */
import { setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { RunConfig } from '../core/config';
import type { CycleMetrics, CycleSummary } from '../core/stages';
import { stageActivities } from './activities';
import { cycleProgressQuery, type CycleProgress, type CycleStage } from './definitions';

export interface DesignCycleInput {
  runId: string;
  cycle: number;
  config: RunConfig;
  /** Model to sample from in this cycle. */
  model: string;
  /** Adapter the model was published from (continued by this cycle's fine-tune), if any. */
  adapterId: number | null;
}

/** Splits `total` samples into activity-sized batches: [firstIndex, count] pairs. */
export function sampleBatches(total: number, perActivity: number): Array<[number, number]> {
  const batches: Array<[number, number]> = [];
  for (let first = 0; first < total; first += perActivity) batches.push([first, Math.min(perActivity, total - first)]);
  return batches;
}

export async function designCycle(input: DesignCycleInput): Promise<CycleSummary> {
  const { runId, cycle, config } = input;
  const acts = stageActivities(config);
  const progress: CycleProgress = {
    cycle,
    stage: 'starting',
    target: cycle === 0 ? 0 : config.sampling.samplesPerCycle,
    sampled: 0,
    validated: 0,
    valid: 0,
    trained: 0,
    admitted: 0,
  };
  setHandler(cycleProgressQuery, () => progress);
  const enter = (stage: CycleStage, details: string) => {
    progress.stage = stage;
    setCurrentDetails(`cycle ${cycle}: ${details}`);
  };

  await acts.bookkeeping.startCycle({ runId, cycle, model: input.model });

  if (cycle > 0) {
    enter('sampling', `sampling ${progress.target} programs from ${input.model}`);
    const batches = sampleBatches(config.sampling.samplesPerCycle, config.sampling.samplesPerActivity);
    const sampled = await Promise.all(
      batches.map(async ([firstIndex, count]) => {
        const result = await acts.sample.sampleBatch.executeWithOptions(
          { summary: `sample #${firstIndex}–${firstIndex + count - 1} from ${input.model}` },
          [{ runId, cycle, model: input.model, firstIndex, count }],
        );
        progress.sampled += result.candidateIds.length;
        return result.candidateIds;
      }),
    );

    // Each candidate goes on to training as soon as it validates, so the gpu queue
    // starts working while the rest are still being checked.
    enter('evaluating', `validating and training ${progress.sampled} candidates`);
    await Promise.all(
      sampled.flat().map(async (candidateId) => {
        const validation = await acts.validate.validateCandidate.executeWithOptions(
          { summary: `validate candidate ${candidateId}` },
          [{ candidateId }],
        );
        progress.validated += 1;
        if (!validation.valid) return;
        progress.valid += 1;
        await acts.train.trainCandidate.executeWithOptions({ summary: `train candidate ${candidateId}` }, [
          { candidateId },
        ]);
        progress.trained += 1;
      }),
    );

    enter('novelty', 'checking novelty against the corpus');
    await acts.novelty.checkNovelty.executeWithOptions({ summary: `novelty of cycle ${cycle}` }, [{ runId, cycle }]);
    enter('selection', 'selecting and admitting');
    const selection = await acts.novelty.selectAndAdmit.executeWithOptions({ summary: `select cycle ${cycle}` }, [
      { runId, cycle },
    ]);
    progress.admitted = selection.admitted;
  }

  let nextModel = input.model;
  let adapterId = input.adapterId;
  if (config.lora.enabled && (cycle > 0 || config.lora.seedFineTune)) {
    enter('fine-tuning', cycle === 0 ? 'seed fine-tune on the LEMUR corpus' : 'LoRA fine-tune on the grown corpus');
    const tuned = await acts.fineTune.fineTuneLora.executeWithOptions({ summary: `LoRA fine-tune after cycle ${cycle}` }, [
      { runId, cycle, previousAdapterId: input.adapterId },
    ]);
    enter('publishing', `publishing adapter ${tuned.adapterId}`);
    const published = await acts.publish.publishAdapter.executeWithOptions(
      { summary: `publish adapter ${tuned.adapterId}` },
      [{ adapterId: tuned.adapterId }],
    );
    nextModel = published.model;
    adapterId = tuned.adapterId;
  }
  enter('metrics', 'computing metrics');
  const computed = await acts.bookkeeping.finishCycle({ runId, cycle });
  // Cycle 0 samples nothing: it has no row in the paper's table.
  const metrics: CycleMetrics | null = cycle > 0 ? computed : null;
  enter('done', metrics ? `done: ${metrics.valid}/${metrics.sampled} valid, ${metrics.admitted} admitted` : 'done');
  return { cycle, metrics, nextModel, adapterId };
}
