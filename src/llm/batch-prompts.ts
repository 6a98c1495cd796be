/**
 * Design prompts for sampling outside a run (compare, the self-seed phase): batch k gets the
 * run's template and task with a reference drawn from the seed corpus by `<purpose>/<k>`, as
 * a run's cycle 1 draws its references, so these samples see what a run's samples see.
 */
import type { RunConfig } from '../core/config';
import { datasetSpecFor } from '../core/datasets';
import { renderDesignPrompt, taskFromConfig, type RenderedPrompt } from '../core/prompts';
import { profileOf } from '../corpus/checks';
import { pickReference } from '../db/corpus';
import type { Queryable } from '../db/pool';
import { loadPromptTemplate } from './prompt-files';

/** The prompt of each batch, keyed by the batch's first sample index. */
export async function batchPrompts(db: Queryable, config: RunConfig, purpose: string, samples: number, batch: number): Promise<Map<number, RenderedPrompt>> {
  const template = loadPromptTemplate(config.prompt.template);
  const prompts = new Map<number, RenderedPrompt>();
  for (let first = 0; first < samples; first += batch) {
    const row = config.prompt.includeReference
      ? await pickReference(db, {
          runId: '',
          cycle: 1,
          minAccuracy: config.prompt.referenceMinAccuracy,
          maxChars: config.prompt.referenceMaxChars,
          key: `${purpose}/${first}`,
          profile: profileOf(config),
        })
      : undefined;
    const reference = row && { code: row.code, accuracy: row.accuracy, datasetTitle: datasetSpecFor(row.dataset)?.title ?? row.dataset ?? 'an unrecorded dataset' };
    prompts.set(first, renderDesignPrompt(template, taskFromConfig(config), reference, { prefill: config.prompt.prefill }));
  }
  return prompts;
}
