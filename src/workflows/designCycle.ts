/**
 * One cycle of the loop, as a child workflow with id `<runId>/cycle-<n>`:
 * sample → (validate → train) per candidate → novelty → select → fine-tune → publish → metrics.
 * Cycle 0 is the seed fine-tune on the LEMUR corpus before any sampling.
 * Deterministic: no I/O here, only activities.
 */
import { ActivityFailure, ApplicationFailure, log, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { RunConfig } from '../core/config';
import { isRepairable } from '../core/repairable';
import type { CycleMetrics, CycleSummary, GateResult } from '../core/stages';
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
  /** False: leave the fine-tune after this cycle to the run (the last cycle, lora.fineTuneLastCycle off). */
  fineTune?: boolean;
}

/**
 * The LoRA fine-tune on the corpus as of `cycle`, then — if the adapter gate (lora.gate) lets
 * it through — its adapter published: the model the next cycle samples. A gate that says the
 * new adapter is worse keeps the model serving (and the adapter it came from); a gate that
 * fails for good (its retries spent) cannot decide, so it never blocks the run.
 */
export async function fineTuneAndPublish(
  acts: ReturnType<typeof stageActivities>,
  config: RunConfig,
  runId: string,
  cycle: number,
  serving: { model: string; adapterId: number | null },
  publishing: (adapterId: number) => void = () => {},
): Promise<{ model: string; adapterId: number | null }> {
  const tuned = await acts.fineTune.fineTuneLora.executeWithOptions({ summary: `LoRA fine-tune after cycle ${cycle}` }, [
    { runId, cycle, previousAdapterId: serving.adapterId },
  ]);
  // `?.`: a config recorded in a history from before lora.gate existed has no gate (replays, runs in flight).
  if ((config.lora.gate?.samples ?? 0) > 0) {
    let gate: GateResult;
    try {
      gate = await acts.gate.gateAdapter.executeWithOptions({ summary: `gate adapter ${tuned.adapterId} against ${serving.model}` }, [
        { runId, cycle, adapterId: tuned.adapterId, servingModel: serving.model },
      ]);
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      gate = { decision: 'publish', measured: false, reason: `not measured: ${error.cause?.message ?? error.message}` };
    }
    log.info('adapter gate', { runId, cycle, adapterId: tuned.adapterId, ...gate });
    if (gate.decision === 'keep-serving') return serving;
  }
  publishing(tuned.adapterId);
  const published = await acts.publish.publishAdapter.executeWithOptions({ summary: `publish adapter ${tuned.adapterId}` }, [
    { adapterId: tuned.adapterId },
  ]);
  return { model: published.model, adapterId: tuned.adapterId };
}

/** Splits `total` samples into activity-sized batches: [firstIndex, count] pairs. */
export function sampleBatches(total: number, perActivity: number): Array<[number, number]> {
  const batches: Array<[number, number]> = [];
  for (let first = 0; first < total; first += perActivity) batches.push([first, Math.min(perActivity, total - first)]);
  return batches;
}

interface InfraFailure {
  stage: 'validate' | 'train' | 'repair';
  message: string;
}

/** A stage activity failed for good (its retries are spent): the error, else rethrow (e.g. cancellation). */
function infraFailure(stage: InfraFailure['stage'], error: unknown): InfraFailure {
  if (!(error instanceof ActivityFailure)) throw error;
  const cause = error.cause;
  return { stage, message: cause instanceof Error ? `${cause.name}: ${cause.message}`.slice(0, 2000) : String(error.message) };
}

export async function designCycle(input: DesignCycleInput): Promise<CycleSummary> {
  const { runId, cycle, config } = input;
  const acts = stageActivities(config);
  const progress: CycleProgress = {
    cycle,
    stage: 'starting',
    target: cycle === 0 ? config.sampling.baselineSamples : config.sampling.samplesPerCycle,
    sampled: 0,
    validated: 0,
    valid: 0,
    trained: 0,
    admitted: 0,
    repairs: 0,
    validAfterRepair: 0,
  };
  setHandler(cycleProgressQuery, () => progress);
  const enter = (stage: CycleStage, details: string) => {
    progress.stage = stage;
    setCurrentDetails(`cycle ${cycle}: ${details}`);
  };

  await acts.bookkeeping.startCycle({ runId, cycle, model: input.model });

  /**
   * validate → (repair → validate)* → train, for one sample. A failed candidate that a
   * further attempt may fix gets up to `sampling.repairAttempts` of them, each its own
   * activity and its own candidate row. An activity that fails for good marks its
   * candidate infra-failed; the cycle goes on.
   */
  const evaluateWithRepair = async (firstId: number): Promise<'done' | InfraFailure> => {
    const { repair, repairAttempts } = config.sampling;
    let candidateId = firstId;
    for (let attempt = 0; ; attempt++) {
      let stage: InfraFailure['stage'] = 'validate';
      try {
        const validation = await acts.validate.validateCandidate.executeWithOptions(
          { summary: attempt === 0 ? `validate candidate ${candidateId}` : `validate candidate ${candidateId} (repair ${attempt} of #${firstId})` },
          [{ candidateId }],
        );
        if (attempt === 0) progress.validated += 1;
        if (validation.valid) {
          if (attempt === 0) progress.valid += 1;
          progress.validAfterRepair += 1;
          stage = 'train';
          await acts.train.trainCandidate.executeWithOptions({ summary: `train candidate ${candidateId}` }, [{ candidateId }]);
          progress.trained += 1;
          return 'done';
        }
        if (repair === 'none' || attempt >= repairAttempts || !isRepairable(validation.failureClass)) return 'done';
        stage = 'repair';
        const repaired = await acts.repair.repairCandidate.executeWithOptions(
          { summary: `${repair === 'resample' ? 'resample' : 'repair'} candidate ${candidateId} (${validation.failureClass}; attempt ${attempt + 1} of ${repairAttempts})` },
          [{ candidateId }],
        );
        progress.repairs += 1;
        candidateId = repaired.candidateId;
      } catch (error) {
        const failure = infraFailure(stage, error);
        log.warn('candidate infra-failed', { candidateId, ...failure });
        await acts.bookkeeping.markInfraFailed({ candidateId, ...failure });
        return failure;
      }
    }
  };

  /**
   * `total` samples of this cycle from `input.model`, `samplesPerActivity` per activity,
   * all batches at once; the candidate ids in sample order. `promptCycle`: the cycle whose
   * prompt to render (the baseline asks what cycle 1 asks).
   */
  const sampleAll = async (total: number, label: string, promptCycle?: number): Promise<number[]> => {
    const batches = sampleBatches(total, config.sampling.samplesPerActivity);
    const sampled = await Promise.all(
      batches.map(async ([firstIndex, count]) => {
        const result = await acts.sample.sampleBatch.executeWithOptions(
          { summary: `${label}#${firstIndex}–${firstIndex + count - 1} from ${input.model}` },
          [{ runId, cycle, model: input.model, firstIndex, count, ...(promptCycle === undefined ? {} : { promptCycle }) }],
        );
        progress.sampled += result.candidateIds.length;
        return result.candidateIds;
      }),
    );
    return sampled.flat();
  };

  if (cycle > 0) {
    enter('sampling', `sampling ${progress.target} programs from ${input.model}`);
    const candidates = await sampleAll(config.sampling.samplesPerCycle, 'sample ');

    // Each candidate goes on to training as soon as it validates, so the gpu queue
    // starts working while the rest are still being checked.
    enter('evaluating', `validating and training ${progress.sampled} candidates`);
    const outcomes = await Promise.all(candidates.map((candidateId) => evaluateWithRepair(candidateId)));
    const infra = outcomes.filter((outcome): outcome is InfraFailure => outcome !== 'done');
    if (candidates.length > 0 && infra.length === candidates.length) {
      // Not one candidate could be evaluated: the machinery is down, not the programs.
      const last = infra[infra.length - 1]!;
      throw ApplicationFailure.nonRetryable(
        `infrastructure down: every ${last.stage} of cycle ${cycle} failed after its retries (last: ${last.message})`,
        'InfrastructureDown',
      );
    }

    enter('novelty', 'checking novelty against the corpus');
    await acts.novelty.checkNovelty.executeWithOptions({ summary: `novelty of cycle ${cycle}` }, [{ runId, cycle }]);
    enter('selection', 'selecting and admitting');
    const selection = await acts.novelty.selectAndAdmit.executeWithOptions({ summary: `select cycle ${cycle}` }, [
      { runId, cycle },
    ]);
    progress.admitted = selection.admitted;
  }

  // The baseline: what the base model writes, before any fine-tune, on cycle 1's prompt.
  const baseline = cycle === 0 && config.sampling.baselineSamples > 0;
  if (baseline) {
    enter('sampling', `baseline: ${progress.target} programs from the base model ${input.model}`);
    const ids = await sampleAll(config.sampling.baselineSamples, 'baseline sample ', 1);
    enter('evaluating', `validating ${progress.sampled} baseline programs (first attempt only)`);
    await Promise.all(
      ids.map(async (candidateId) => {
        try {
          const validation = await acts.validate.validateCandidate.executeWithOptions({ summary: `validate baseline candidate ${candidateId}` }, [{ candidateId }]);
          progress.validated += 1;
          if (validation.valid) progress.valid += 1;
        } catch (error) {
          const failure = infraFailure('validate', error);
          await acts.bookkeeping.markInfraFailed({ candidateId, ...failure });
        }
      }),
    );
  }

  let nextModel = input.model;
  let adapterId = input.adapterId;
  if (config.lora.enabled && (cycle > 0 || config.lora.seedFineTune) && input.fineTune !== false) {
    enter('fine-tuning', cycle === 0 ? 'seed fine-tune on the LEMUR corpus' : 'LoRA fine-tune on the grown corpus');
    ({ model: nextModel, adapterId } = await fineTuneAndPublish(acts, config, runId, cycle, { model: input.model, adapterId: input.adapterId }, (adapter) =>
      enter('publishing', `publishing adapter ${adapter}`),
    ));
  }
  enter('metrics', 'computing metrics');
  const computed = await acts.bookkeeping.finishCycle({ runId, cycle });
  // Cycle 0 has a row only when it sampled a baseline.
  const metrics: CycleMetrics | null = cycle > 0 || baseline ? computed : null;
  enter('done', metrics ? `done: ${metrics.valid}/${metrics.sampled} valid, ${metrics.admitted} admitted` : 'done');
  return { cycle, metrics, nextModel, adapterId };
}
