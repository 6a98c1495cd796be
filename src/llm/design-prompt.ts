/** The prompt for one sampling batch: template file + task from config + a corpus reference. */
import type { RunConfig } from '../core/config';
import { datasetSpecFor } from '../core/datasets';
import { renderDesignPrompt, taskFromConfig, type ReferenceArchitecture, type RenderedPrompt } from '../core/prompts';
import { profileOf } from '../corpus/checks';
import { pickReference } from '../db/corpus';
import type { Queryable } from '../db/pool';
import { loadPromptTemplate } from './prompt-files';

export interface BatchKey {
  runId: string;
  cycle: number;
  firstIndex: number;
  /** The cycle whose prompt to render (default: `cycle`). */
  promptCycle?: number;
}

export async function buildDesignPrompt(db: Queryable, config: RunConfig, batch: BatchKey): Promise<RenderedPrompt> {
  const template = loadPromptTemplate(config.prompt.template);
  let reference: ReferenceArchitecture | undefined;
  if (config.prompt.includeReference) {
    const cycle = batch.promptCycle ?? batch.cycle;
    const row = await pickReference(db, {
      runId: batch.runId,
      cycle,
      minAccuracy: config.prompt.referenceMinAccuracy,
      maxChars: config.prompt.referenceMaxChars,
      key: `${batch.runId}/${cycle}/${batch.firstIndex}`,
      profile: profileOf(config),
    });
    if (row) {
      const datasetTitle = datasetSpecFor(row.dataset)?.title ?? row.dataset ?? 'an unrecorded dataset';
      reference = { code: row.code, accuracy: row.accuracy, datasetTitle };
    }
  }
  return renderDesignPrompt(template, taskFromConfig(config), reference, { prefill: config.prompt.prefill });
}
