/**
 * The request of one further attempt at a failed program, for the run workflow's repair
 * activity and for `archloop preflight` alike: `feedback` renders the repair template
 * (src/core/repair.ts says what is wrong, where, and what to write instead); `resample`
 * asks the original design prompt again.
 */
import type { RunConfig } from '../core/config';
import { designValues, promptHash, renderTemplate, sha256, taskFromConfig, type ChatMessage, type RenderedPrompt } from '../core/prompts';
import { renderRepair, type FailedProgram } from '../core/repair';
import { loadPromptTemplate } from './prompt-files';

export interface RootPrompt {
  /** The design prompt's user message. */
  body: string;
  /** The reply start it was sent with ('' when none). */
  prefill: string;
  hash: string;
  template: string;
}

export interface RepairRequest {
  /** The prompt row to store (body = the user message; prefill = the reply start). */
  prompt: RenderedPrompt;
  /** The messages before the reply (the client adds the prefill). */
  messages: ChatMessage[];
}

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
