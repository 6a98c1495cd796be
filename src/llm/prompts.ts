/**
 * Every prompt archloop sends to the LLM is built here: the run's design prompt for one
 * sampling batch, design prompts for sampling outside a run (compare, the self-seed phase),
 * and the request of a repair attempt. The wording is in prompts/<template>.md; the pure
 * rendering (placeholders, hashing) in src/core/prompts.ts and, for repair's diagnosis,
 * src/core/repair.ts.
 */
import type { RunConfig } from '../core/config';
import { datasetSpecFor } from '../core/datasets';
import {
  designValues,
  promptHash,
  renderDesignPrompt,
  renderTemplate,
  sha256,
  taskFromConfig,
  type ChatMessage,
  type ReferenceArchitecture,
  type RenderedPrompt,
} from '../core/prompts';
import { renderRepair, type FailedProgram } from '../core/repair';
import { profileOf } from '../corpus/checks';
import type { RepairSource } from '../db/candidates';
import { pickReference } from '../db/corpus';
import type { Queryable } from '../db/pool';
import { loadPromptTemplate } from './prompt-files';

/** The corpus program a design prompt shows, drawn by `key` (undefined when the config shows none or none fits). */
async function referenceFor(db: Queryable, config: RunConfig, runId: string, cycle: number, key: string): Promise<ReferenceArchitecture | undefined> {
  if (!config.prompt.includeReference) return undefined;
  const row = await pickReference(db, {
    runId,
    cycle,
    minAccuracy: config.prompt.referenceMinAccuracy,
    maxChars: config.prompt.referenceMaxChars,
    key,
    profile: profileOf(config),
  });
  if (!row) return undefined;
  return { code: row.code, accuracy: row.accuracy, datasetTitle: datasetSpecFor(row.dataset)?.title ?? row.dataset ?? 'an unrecorded dataset' };
}

export interface BatchKey {
  runId: string;
  cycle: number;
  firstIndex: number;
  /** The cycle whose prompt to render (default: `cycle`). */
  promptCycle?: number;
}

/** The prompt for one sampling batch of a run: template file + task from config + a corpus reference. */
export async function buildDesignPrompt(db: Queryable, config: RunConfig, batch: BatchKey): Promise<RenderedPrompt> {
  const template = loadPromptTemplate(config.prompt.template);
  const cycle = batch.promptCycle ?? batch.cycle;
  const reference = await referenceFor(db, config, batch.runId, cycle, `${batch.runId}/${cycle}/${batch.firstIndex}`);
  return renderDesignPrompt(template, taskFromConfig(config), reference, { prefill: config.prompt.prefill });
}

/**
 * Design prompts for sampling outside a run (compare, the self-seed phase): batch k gets the
 * run's template and task with a reference drawn from the seed corpus by `<purpose>/<k>`, as
 * a run's cycle 1 draws its references, so these samples see what a run's samples see.
 * The prompt of each batch, keyed by the batch's first sample index.
 */
export async function batchPrompts(db: Queryable, config: RunConfig, purpose: string, samples: number, batch: number): Promise<Map<number, RenderedPrompt>> {
  const template = loadPromptTemplate(config.prompt.template);
  const prompts = new Map<number, RenderedPrompt>();
  for (let first = 0; first < samples; first += batch) {
    const reference = await referenceFor(db, config, '', 1, `${purpose}/${first}`);
    prompts.set(first, renderDesignPrompt(template, taskFromConfig(config), reference, { prefill: config.prompt.prefill }));
  }
  return prompts;
}

/** A failed candidate's design prompt, as resampling sends it again. */
export interface RootPrompt {
  /** The design prompt's user message. */
  body: string;
  /** The reply start it was sent with ('' when none). */
  prefill: string;
  hash: string;
  template: string;
}

/** The root prompt from what a candidate row stored of it (its body and the messages sent). */
export function rootPrompt(stored: Pick<RepairSource, 'root_body' | 'root_messages' | 'root_prompt_hash'>, config: RunConfig): RootPrompt {
  const messages = stored.root_messages ?? [];
  const prefill = messages.at(-1)?.role === 'assistant' ? messages.at(-1)!.content : '';
  const body = stored.root_body ?? '';
  return { body, prefill, hash: stored.root_prompt_hash ?? promptHash(body, prefill), template: config.prompt.template };
}

export interface RepairRequest {
  /** The prompt row to store (body = the user message; prefill = the reply start). */
  prompt: RenderedPrompt;
  /** The messages before the reply (the client adds the prefill). */
  messages: ChatMessage[];
}

/**
 * The request of one further attempt at a failed program, for the run workflow's repair
 * activity and for `archloop preflight` alike: `feedback` renders the repair template
 * (src/core/repair.ts says what is wrong, where, and what to write instead); `resample`
 * asks the original design prompt again.
 */
export function repairRequest(config: RunConfig, failed: FailedProgram, root: RootPrompt): RepairRequest {
  if (config.sampling.repair === 'resample') {
    return {
      prompt: { template: root.template, templateHash: '', body: root.body, prefill: root.prefill, hash: root.hash },
      messages: [{ role: 'user', content: root.body }],
    };
  }
  const design = loadPromptTemplate(config.prompt.template);
  const values = designValues(taskFromConfig(config));
  const prefill = config.prompt.prefill && design.reply !== undefined ? renderTemplate(design.reply, values) : '';
  const template = loadPromptTemplate(config.prompt.repairTemplate);
  const body = renderRepair(template.text, failed, { maxParams: config.contract.maxParams, validateBatch: config.contract.validateBatchSize }, values);
  return {
    prompt: { template: template.name, templateHash: sha256(template.text), body, prefill, hash: promptHash(body, prefill) },
    messages: [{ role: 'user', content: body }],
  };
}
