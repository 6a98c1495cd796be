/**
 * The fine-tuning set of a cycle: chat-format prompt/code pairs built from the corpus as
 * the run sees it (seed entries + entries it admitted before this cycle). An admitted
 * entry is paired with the exact prompt that produced it; a seed entry with the design
 * prompt for its own dataset, without a reference. Pure (buildPairSet; the JSONL bytes are
 * hashed) except loadPairSet, which reads the corpus as of a cycle.
 */
import type { RunConfig } from '../core/config';
import { DATASET_SPECS, datasetSpecFor, resizedSpec } from '../core/datasets';
import { renderDesignPrompt, sha256, taskFromConfig, trainingPair, type PromptTemplate, type TrainingPair } from '../core/prompts';
import { profileOf } from '../corpus/checks';
import { corpusAsOf, type CorpusRow } from '../db/corpus';
import type { Queryable } from '../db/pool';
import { loadPromptTemplate } from './prompt-files';

/** Conservative characters per token for code (BPE tokenizers average 3–4 on Python). */
export const CHARS_PER_TOKEN = 3;

export interface PairSet {
  pairs: TrainingPair[];
  /** Corpus ids in file order. */
  entryIds: number[];
  jsonl: string;
  dataHash: string;
  /** Entries left out because the pair would not fit maxSeqLen (truncation would teach cut-off code). */
  skippedTooLong: number;
  /** Entries left out by lora.maxPairs. */
  skippedOverCap: number;
}

export function pairFor(row: CorpusRow, config: RunConfig, template: PromptTemplate): TrainingPair {
  if (row.prompt_body) return trainingPair(row.prompt_body, row.code);
  // At the run's resolution: the seed validated at the run's shape (src/corpus/checks.ts).
  const dataset = resizedSpec(datasetSpecFor(row.dataset) ?? DATASET_SPECS[config.dataset.name], config.dataset.resize);
  return trainingPair(renderDesignPrompt(template, taskFromConfig(config, dataset)).body, row.code);
}

function pairChars(pair: TrainingPair): number {
  return pair.messages.reduce((sum, message) => sum + message.content.length, 0);
}

/**
 * Preference when lora.maxPairs caps the set: what this run admitted (newest cycle first),
 * then seed entries by accuracy. The file itself lists the chosen entries by corpus id.
 */
function preferenceOrder(a: CorpusRow, b: CorpusRow): number {
  const ownA = a.run_id !== null ? 1 : 0;
  const ownB = b.run_id !== null ? 1 : 0;
  if (ownA !== ownB) return ownB - ownA;
  if (ownA && a.cycle !== b.cycle) return (b.cycle ?? 0) - (a.cycle ?? 0);
  if ((a.accuracy ?? -1) !== (b.accuracy ?? -1)) return (b.accuracy ?? -1) - (a.accuracy ?? -1);
  return a.id - b.id;
}

export function buildPairSet(rows: readonly CorpusRow[], config: RunConfig, template: PromptTemplate): PairSet {
  const maxChars = config.lora.maxSeqLen * CHARS_PER_TOKEN;
  const fitting: { row: CorpusRow; pair: TrainingPair }[] = [];
  let skippedTooLong = 0;
  for (const row of [...rows].sort(preferenceOrder)) {
    const pair = pairFor(row, config, template);
    if (pairChars(pair) > maxChars) skippedTooLong++;
    else fitting.push({ row, pair });
  }
  const cap = config.lora.maxPairs > 0 ? config.lora.maxPairs : fitting.length;
  const chosen = fitting.slice(0, cap).sort((a, b) => a.row.id - b.row.id);
  const jsonl = chosen.map(({ pair }) => `${JSON.stringify(pair)}\n`).join('');
  return {
    pairs: chosen.map(({ pair }) => pair),
    entryIds: chosen.map(({ row }) => row.id),
    jsonl,
    dataHash: sha256(jsonl),
    skippedTooLong,
    skippedOverCap: fitting.length - chosen.length,
  };
}

/** The pair set a run's fine-tune after `cycle` learns from (cycle 0: the seed entries). */
export async function loadPairSet(db: Queryable, config: RunConfig, runId: string, cycle: number): Promise<PairSet> {
  return buildPairSet(await corpusAsOf(db, runId, cycle, profileOf(config)), config, loadPromptTemplate(config.prompt.template));
}
