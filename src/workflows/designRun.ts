/**
 * The run: validate the config, then cycles 0..N as child workflows, steerable while it
 * runs (pause / resume / stop after the cycle / change the number of cycles) and readable
 * from the Temporal UI (search attributes, current details, a progress query).
 * Deterministic: no I/O here, only activities and child workflows.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  setCurrentDetails as setUiDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { RunConfig, formatIssues } from '../core/config';
import type { CycleSummary, RunStatus } from '../core/stages';
import { TASK_QUEUES } from '../core/task-queues';
import { stageActivities } from './activities';
import { designCycle, fineTuneAndPublish } from './designCycle';
import {
  cycleWorkflowId,
  pauseSignal,
  progressQuery,
  resumeSignal,
  searchAttributes,
  setRemainingCyclesUpdate,
  stopAfterCycleSignal,
  type RunProgress,
} from './definitions';

export interface DesignRunInput {
  /** Run config as JSON (a preset merged with the user's overrides). */
  config: unknown;
  /** Carried over by continue-as-new; absent on a fresh start. */
  state?: RunState;
}

export interface RunState {
  nextCycle: number;
  totalCycles: number;
  model: string;
  adapterId: number | null;
  paused: boolean;
  stopRequested: boolean;
  completed: CycleSummary[];
  /** A cycle whose fine-tune was skipped as the last one (lora.fineTuneLastCycle off) and is owed if the run goes on. */
  fineTuneOwed?: number | null;
}

export interface RunOutcome {
  runId: string;
  status: RunStatus;
  completed: CycleSummary[];
  model: string;
}

/** Parses the config inside the workflow: a bad config fails the run at once, without retries. */
export function configOrFail(raw: unknown): RunConfig {
  const parsed = RunConfig.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw ApplicationFailure.nonRetryable(`invalid config: ${formatIssues(parsed.error).join('; ')}`, 'InvalidConfig');
}

export async function designRun(input: DesignRunInput): Promise<RunOutcome> {
  const config = configOrFail(input.config);
  const runId = workflowInfo().workflowId;
  const acts = stageActivities(config);
  const state: RunState = input.state ?? {
    nextCycle: config.lora.enabled && config.lora.seedFineTune ? 0 : 1,
    totalCycles: config.cycles,
    model: config.llm.model,
    adapterId: null,
    paused: false,
    stopRequested: false,
    completed: [],
  };
  let currentCycle: number | null = null;

  const status = (): RunStatus => (state.stopRequested ? 'stopping' : state.paused ? 'paused' : 'running');
  setHandler(pauseSignal, () => void (state.paused = true));
  setHandler(resumeSignal, () => void (state.paused = false));
  setHandler(stopAfterCycleSignal, () => void (state.stopRequested = true));
  // What the run does now, shown in the Temporal UI and by `archloop watch` (e.g. the checks before cycle 0).
  let details = '';
  const setCurrentDetails = (text: string) => {
    details = text;
    setUiDetails(text);
  };
  setHandler(
    progressQuery,
    (): RunProgress => ({
      runId,
      details,
      status: status(),
      currentCycle,
      totalCycles: state.totalCycles,
      completed: state.completed,
      model: state.model,
    }),
  );
  setHandler(
    setRemainingCyclesUpdate,
    (remaining: number) => {
      // Cycles already started stay; `remaining` more follow the last started one.
      state.totalCycles = state.nextCycle - 1 + remaining;
      return state.totalCycles;
    },
    {
      validator: (remaining: number) => {
        if (!Number.isInteger(remaining) || remaining < 0 || remaining > 10_000) {
          throw new Error(`remaining cycles must be an integer in 0..10000, got ${remaining}`);
        }
      },
    },
  );

  if (!input.state) {
    upsertSearchAttributes([{ key: searchAttributes.preset, value: config.preset }]);
    await acts.bookkeeping.startRun({ runId, config });
    // Fail now, not after hours of work: the endpoint can serve this run, and the seed
    // corpus has entries that validate at the run's shape and budget.
    setCurrentDetails('checking the LLM endpoint');
    await acts.preflight.checkEndpoint.executeWithOptions({ summary: `check the LLM endpoint for ${config.llm.model}` }, [{ runId }]);
    setCurrentDetails('checking the seed corpus at the run\'s shape');
    await acts.preflight.checkSeedCorpus.executeWithOptions({ summary: 'validate the seed corpus at the run\'s shape' }, [{ runId }]);
  }

  while (state.nextCycle <= state.totalCycles) {
    if (state.paused) setCurrentDetails(`paused before cycle ${state.nextCycle}`);
    await condition(() => !state.paused || state.stopRequested);
    if (state.stopRequested) break;

    const cycle = state.nextCycle;
    if (state.fineTuneOwed != null) {
      // The run was extended after a last cycle that skipped its fine-tune: the next cycle
      // samples from a model that has seen that cycle's admissions, as in any other run.
      setCurrentDetails(`fine-tune after cycle ${state.fineTuneOwed}, owed now that cycle ${cycle} follows`);
      ({ model: state.model, adapterId: state.adapterId } = await fineTuneAndPublish(acts, config, runId, state.fineTuneOwed, { model: state.model, adapterId: state.adapterId }));
      state.fineTuneOwed = null;
    }
    currentCycle = cycle;
    state.nextCycle = cycle + 1;
    // Decided when the cycle starts; a later `cycles` update is settled above, before the next one.
    const skipFineTune = cycle > 0 && cycle === state.totalCycles && !config.lora.fineTuneLastCycle;
    setCurrentDetails(`cycle ${cycle} of ${state.totalCycles}`);
    const summary = await executeChild(designCycle, {
      workflowId: cycleWorkflowId(runId, cycle),
      taskQueue: TASK_QUEUES.control,
      staticSummary: cycle === 0 ? 'cycle 0: seed fine-tune' : `cycle ${cycle}`,
      args: [{ runId, cycle, config, model: state.model, adapterId: state.adapterId, ...(skipFineTune ? { fineTune: false } : {}) }],
    });
    if (skipFineTune && config.lora.enabled) state.fineTuneOwed = cycle;
    currentCycle = null;
    state.completed.push(summary);
    state.model = summary.nextModel;
    state.adapterId = summary.adapterId;
    upsertSearchAttributes([
      { key: searchAttributes.cycle, value: cycle },
      ...(summary.metrics
        ? [
            { key: searchAttributes.validRate, value: summary.metrics.validRate },
            ...(summary.metrics.bestAccuracy === null
              ? []
              : [{ key: searchAttributes.bestAccuracy, value: bestSoFar(state.completed) }]),
          ]
        : []),
    ]);

    if (workflowInfo().continueAsNewSuggested && state.nextCycle <= state.totalCycles) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof designRun>({ config: input.config, state });
    }
  }

  const finalStatus: RunStatus = state.stopRequested && state.nextCycle <= state.totalCycles ? 'stopped' : 'completed';
  await acts.bookkeeping.finishRun({ runId, status: finalStatus });
  setCurrentDetails(`${finalStatus} after ${state.completed.length} cycle(s)`);
  return { runId, status: finalStatus, completed: state.completed, model: state.model };
}

function bestSoFar(completed: CycleSummary[]): number {
  return Math.max(...completed.map((c) => c.metrics?.bestAccuracy ?? 0));
}
