/**
 * Design prompts: pure rendering of a template file (prompts/<name>.md) into the text sent
 * to the LLM, and the chat-format prompt/code pairs that fine-tuning learns from. The
 * template and the rendered prompt are hashed (sha256) so every candidate row names the
 * exact prompt it came from.
 *
 * Template syntax: `{{name}}` is replaced by a value; `{{#name}}…{{/name}}` is kept only
 * when `name` has a non-empty value. Values are inserted verbatim (never re-scanned), and
 * a placeholder without a value is an error, so templates and code cannot drift apart.
 */
import { createHash } from 'node:crypto';
import type { RunConfig } from './config';
import { runDatasetSpec, type DatasetSpec } from './datasets';

export interface PromptTemplate {
  name: string;
  /** The user message. */
  text: string;
  /** The start of the assistant's reply (prompts/<name>.reply.md), continued by the model. */
  reply?: string;
}

export interface DesignTask {
  dataset: DatasetSpec;
  maxParams: number;
  batchSize: number;
  /** The fixed hyperparameters the trainer passes to every model. */
  prm: Readonly<Record<string, number>>;
}

export interface ReferenceArchitecture {
  code: string;
  accuracy: number;
  /** Dataset the accuracy was measured on, as a display title. */
  datasetTitle: string;
}

export interface RenderedPrompt {
  template: string;
  templateHash: string;
  body: string;
  /** The rendered start of the reply ('' when the template has none or prefill is off). */
  prefill: string;
  hash: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * One fine-tuning example, in the form the model is sampled with: `messages` is the request
 * as sent (the user turn, then the prefilled start of the reply, if any) and `completion`
 * what the model writes after it. The trainer puts the loss on the completion alone.
 */
export interface TrainingPair {
  messages: ChatMessage[];
  completion: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const SECTION = /\{\{#(\w+)\}\}([\s\S]*?)\{\{\/\1\}\}/g;
const PLACEHOLDER = /\{\{\s*([#/]?)(\w+)\s*\}\}/g;

/** Substitutes `values` into `text` (see the syntax above). */
export function renderTemplate(text: string, values: Readonly<Record<string, string | undefined>>): string {
  const withSections = text.replace(SECTION, (_all, name: string, inner: string) => (values[name] ? inner : ''));
  return withSections.replace(PLACEHOLDER, (_all, marker: string, name: string) => {
    if (marker) throw new TemplateError(`unbalanced section {{${marker}${name}}}`);
    const value = values[name];
    if (value === undefined) throw new TemplateError(`template placeholder {{${name}}} has no value`);
    return value;
  });
}

/** The task a run's config describes (dataset spec, parameter budget, fixed prm). */
export function taskFromConfig(config: RunConfig, dataset: DatasetSpec = runDatasetSpec(config.dataset)): DesignTask {
  const { lr, momentum, dropout, batchSize } = config.training;
  return { dataset, maxParams: config.contract.maxParams, batchSize, prm: { lr, momentum, dropout } };
}

function pythonDict(values: Readonly<Record<string, number>>): string {
  return `{${Object.entries(values)
    .map(([key, value]) => `'${key}': ${value}`)
    .join(', ')}}`;
}

function tuple(values: readonly number[]): string {
  return values.length === 1 ? `(${values[0]},)` : `(${values.join(', ')})`;
}

export function formatAccuracy(accuracy: number): string {
  return `${(accuracy * 100).toFixed(1)} %`;
}

/** The values every design template may use. */
export function designValues(task: DesignTask, reference?: ReferenceArchitecture): Record<string, string> {
  const { dataset } = task;
  const [channels, height, width] = dataset.shape;
  return {
    datasetTitle: dataset.title,
    classes: String(dataset.classes),
    channels: String(channels),
    height: String(height),
    width: String(width),
    mean: tuple(dataset.mean),
    std: tuple(dataset.std),
    maxParams: task.maxParams.toLocaleString('en-US'),
    batchSize: String(task.batchSize),
    prm: pythonDict(task.prm),
    reference: reference ? 'yes' : '',
    referenceAccuracy: reference ? formatAccuracy(reference.accuracy) : '',
    referenceDataset: reference?.datasetTitle ?? '',
    referenceCode: reference ? reference.code.trimEnd() : '',
  };
}

/** Hash of a template's files: the user message alone, or both files when there is a reply. */
export function templateHash(template: PromptTemplate): string {
  return template.reply === undefined ? sha256(template.text) : sha256(JSON.stringify([template.text, template.reply]));
}

/** Hash of what the LLM was given: the body alone (no prefill), or body and prefill. */
export function promptHash(body: string, prefill: string): string {
  return prefill ? sha256(JSON.stringify([body, prefill])) : sha256(body);
}

export function renderDesignPrompt(
  template: PromptTemplate,
  task: DesignTask,
  reference?: ReferenceArchitecture,
  options: { prefill?: boolean } = {},
): RenderedPrompt {
  const values = designValues(task, reference);
  const body = renderTemplate(template.text, values);
  const prefill = options.prefill !== false && template.reply !== undefined ? renderTemplate(template.reply, values) : '';
  return { template: template.name, templateHash: templateHash(template), body, prefill, hash: promptHash(body, prefill) };
}

/** The messages sent to a chat endpoint for one prompt. */
export function chatMessages(body: string): ChatMessage[] {
  return [{ role: 'user', content: body }];
}

/**
 * A program as the assistant should answer it: one python fence (what extract.ts reads
 * back), longer than any backtick run inside the code so the code cannot close it.
 */
export function fencePython(code: string): string {
  const longestRun = Math.max(0, ...(code.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return `${fence}python\n${code.trimEnd()}\n${fence}`;
}

/** The whole conversation a rendered prompt sends: the user message, and the prefilled reply start. */
export function promptMessages(prompt: Pick<RenderedPrompt, 'body' | 'prefill'>): ChatMessage[] {
  return [...chatMessages(prompt.body), ...(prompt.prefill ? [{ role: 'assistant' as const, content: prompt.prefill }] : [])];
}
