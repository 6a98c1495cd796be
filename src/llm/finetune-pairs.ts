/**
 * The fine-tuning set of a cycle, in the form the model is sampled with (one format): each
 * pair is the design request as sent — the run's dataset and shape, a reference program as
 * sampling picks one, the prefilled reply start — and the completion the model should write
 * after the prefill. An admission is paired with the design request of its first attempt
 * (a repaired program too, so the model learns to write it in one go); a seed entry with
 * the design prompt rendered for this run, its program fitted to the prefilled header
 * (src/core/header-fit.ts) or left out and counted.
 *
 * What each fine-tune trains on:
 * - cycle 0 (the seed fine-tune): the seed pairs, at most lora.maxPairs (the best first),
 *   once each per epoch;
 * - after cycle n ≥ 1: every program admitted in cycle n, lora.passes times, plus older pairs
 *   (earlier admissions and seeds, drawn by lora.seed) making up at most lora.replayShare of
 *   the examples. The step count follows from that.
 *
 * Pure (buildPairSet; the JSONL bytes are hashed) except loadPairSet, which reads the corpus.
 */
import type { RunConfig } from '../core/config';
import { datasetSpecFor } from '../core/datasets';
import { completionAfter } from '../core/header-fit';
import { promptMessages, renderDesignPrompt, sha256, taskFromConfig, type PromptTemplate, type ReferenceArchitecture, type TrainingPair } from '../core/prompts';
import { profileOf } from '../corpus/checks';
import { corpusAsOf, type CorpusRow } from '../db/corpus';
import type { Queryable } from '../db/pool';
import { loadPromptTemplate } from './prompt-files';
import { cachedSelfSeed } from './self-seed';

/** Conservative characters per token for code (BPE tokenizers average 3–4 on Python). */
export const CHARS_PER_TOKEN = 3;

export interface PairSet {
  /** In file order; an admission appears lora.passes times. */
  pairs: TrainingPair[];
  /** Corpus ids in file order (repeats included); self-seed pairs, which have none, are not listed. */
  entryIds: number[];
  jsonl: string;
  dataHash: string;
  /** Entries left out because the pair would not fit maxSeqLen (truncation would teach cut-off code). */
  skippedTooLong: number;
  /** Entries left out by lora.maxPairs (the seed fine-tune). */
  skippedOverCap: number;
  /** Entries left out because their program cannot continue the prefilled header, by reason. */
  skippedNoFit: Record<string, number>;
  /** Seed programs rewritten to continue the prefilled header. */
  rewritten: number;
  /** After cycle n: programs admitted in cycle n, how often each is in the file, and the older pairs replayed. */
  own: number;
  passes: number;
  replayed: number;
  /** Said when the cycle's own admissions cannot fill what lora.passes asks for. */
  note: string | null;
}

type PairOutcome = { pair: TrainingPair; rewritten: boolean } | { skip: 'too-long' } | { skip: 'no-fit'; reason: string };

/** A reference for a seed's prompt, as sampling picks one (src/db/corpus.ts pickReference): accurate, short, never itself. */
function referenceFor(row: CorpusRow, pool: readonly CorpusRow[]): ReferenceArchitecture | undefined {
  const others = pool.filter((entry) => entry.id !== row.id);
  if (others.length === 0) return undefined;
  const pick = others[parseInt(sha256(`reference/${row.id}`).slice(0, 8), 16) % others.length]!;
  const datasetTitle = datasetSpecFor(pick.dataset)?.title ?? pick.dataset ?? 'an unrecorded dataset';
  return { code: pick.code, accuracy: pick.accuracy ?? 0, datasetTitle };
}

function referencePool(rows: readonly CorpusRow[], config: RunConfig): CorpusRow[] {
  if (!config.prompt.includeReference) return [];
  const { referenceMinAccuracy, referenceMaxChars } = config.prompt;
  return rows.filter((row) => (row.accuracy ?? -1) >= referenceMinAccuracy && row.code.length <= referenceMaxChars);
}

/** The request a corpus entry is paired with: an admission's own design request, else the run's design prompt. */
function requestFor(row: CorpusRow, config: RunConfig, template: PromptTemplate, references: readonly CorpusRow[]) {
  if (row.run_id !== null && row.design_messages?.length) return row.design_messages;
  // At the run's dataset, shape and resolution: the seed validated there (src/corpus/checks.ts).
  const prompt = renderDesignPrompt(template, taskFromConfig(config), referenceFor(row, references), { prefill: config.prompt.prefill });
  return promptMessages(prompt);
}

export function pairFor(row: CorpusRow, config: RunConfig, template: PromptTemplate, references: readonly CorpusRow[] = []): PairOutcome {
  const messages = requestFor(row, config, template, references);
  const last = messages[messages.length - 1];
  const prefill = last?.role === 'assistant' ? last.content : '';
  const made = completionAfter(prefill, row.code);
  if ('reason' in made) return { skip: 'no-fit', reason: made.reason };
  const pair: TrainingPair = { messages, completion: made.completion };
  const chars = messages.reduce((sum, message) => sum + message.content.length, made.completion.length);
  if (chars > config.lora.maxSeqLen * CHARS_PER_TOKEN) return { skip: 'too-long' };
  return { pair, rewritten: made.rewritten };
}

/**
 * Preference when lora.maxPairs caps the seed set: what this run admitted (newest cycle
 * first), then seed entries by accuracy. The file itself lists the chosen entries by corpus id.
 */
function preferenceOrder(a: CorpusRow, b: CorpusRow): number {
  const ownA = a.run_id !== null ? 1 : 0;
  const ownB = b.run_id !== null ? 1 : 0;
  if (ownA !== ownB) return ownB - ownA;
  if (ownA && a.cycle !== b.cycle) return (b.cycle ?? 0) - (a.cycle ?? 0);
  if ((a.accuracy ?? -1) !== (b.accuracy ?? -1)) return (b.accuracy ?? -1) - (a.accuracy ?? -1);
  return a.id - b.id;
}

/** How many older pairs may stand beside `own` examples so that they make up at most `share` of all. */
export function replayCount(own: number, share: number, available: number): number {
  if (share <= 0 || available <= 0) return 0;
  return Math.min(available, Math.floor((share / (1 - share)) * own + 1e-9));
}

export interface PairScope {
  runId: string;
  /** The fine-tune after this cycle (0: the seed fine-tune). */
  cycle: number;
  /** The seed fine-tune's pairs from the base model's own valid programs (lora.seedFrom self or both). */
  selfPairs?: readonly TrainingPair[];
}

export function buildPairSet(rows: readonly CorpusRow[], config: RunConfig, template: PromptTemplate, scope: PairScope): PairSet {
  const references = referencePool(rows, config);
  const made: Array<{ row: CorpusRow; pair: TrainingPair }> = [];
  const skippedNoFit: Record<string, number> = {};
  let skippedTooLong = 0;
  let rewritten = 0;
  for (const row of [...rows].sort((a, b) => a.id - b.id)) {
    const outcome = pairFor(row, config, template, references);
    if ('pair' in outcome) {
      made.push({ row, pair: outcome.pair });
      if (outcome.rewritten) rewritten++;
    } else if (outcome.skip === 'too-long') skippedTooLong++;
    else skippedNoFit[outcome.reason] = (skippedNoFit[outcome.reason] ?? 0) + 1;
  }

  let chosen: Array<{ row: CorpusRow; pair: TrainingPair }>;
  let skippedOverCap = 0;
  let own = 0;
  let replayed = 0;
  let note: string | null = null;
  const { passes } = config.lora;
  let selfPairs: TrainingPair[] = [];
  if (scope.cycle === 0) {
    // The base model's own programs first (they are this very task), then LEMUR's by preference.
    const fromLemur = config.lora.seedFrom === 'self' ? [] : made;
    const cap = config.lora.maxPairs > 0 ? config.lora.maxPairs : Infinity;
    selfPairs = (scope.selfPairs ?? []).slice(0, cap);
    chosen = [...fromLemur].sort((a, b) => preferenceOrder(a.row, b.row)).slice(0, Math.max(0, cap - selfPairs.length)).sort((a, b) => a.row.id - b.row.id);
    skippedOverCap = fromLemur.length - chosen.length + ((scope.selfPairs?.length ?? 0) - selfPairs.length);
  } else {
    const isOwn = (row: CorpusRow) => row.run_id === scope.runId && row.cycle === scope.cycle;
    const ownPairs = made.filter(({ row }) => isOwn(row));
    // Older pairs in an order drawn by lora.seed and the cycle, so a retry replays the same ones.
    const older = made
      .filter(({ row }) => !isOwn(row))
      .map((entry) => ({ entry, key: sha256(`${config.lora.seed}/${scope.cycle}/${entry.row.id}`) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(({ entry }) => entry);
    own = ownPairs.length;
    replayed = own > 0 ? replayCount(own * passes, config.lora.replayShare, older.length) : Math.min(older.length, passes);
    if (own === 0) note = `cycle ${scope.cycle} admitted no program that fits: ${replayed} older pair(s) replayed only`;
    chosen = [...ownPairs.flatMap((entry) => Array.from({ length: passes }, () => entry)), ...older.slice(0, replayed)];
  }
  const pairs = [...selfPairs, ...chosen.map(({ pair }) => pair)];
  const jsonl = pairs.map((pair) => `${JSON.stringify(pair)}\n`).join('');
  return {
    pairs,
    entryIds: chosen.map(({ row }) => row.id),
    jsonl,
    dataHash: sha256(jsonl),
    skippedTooLong,
    skippedOverCap,
    skippedNoFit,
    rewritten,
    own,
    passes: scope.cycle === 0 ? config.lora.epochs : passes,
    replayed,
    note,
  };
}

export class SelfSeedMissing extends Error {
  override name = 'SelfSeedMissing';
}

/** The pair set a run's fine-tune after `cycle` learns from (cycle 0: the seed entries, and the self-seed set when configured). */
export async function loadPairSet(db: Queryable, config: RunConfig, runId: string, cycle: number): Promise<PairSet> {
  const rows = await corpusAsOf(db, runId, cycle, profileOf(config));
  let selfPairs: TrainingPair[] | undefined;
  if (cycle === 0 && config.lora.seedFrom !== 'lemur') {
    const self = await cachedSelfSeed(db, config);
    if (!self) {
      throw new SelfSeedMissing(
        `lora.seedFrom is ${config.lora.seedFrom} but the base model's own programs have not been sampled for this config: run \`archloop seed-adapter --preset ${config.preset} --from ${config.lora.seedFrom}\` first`,
      );
    }
    selfPairs = self.pairs;
  }
  return buildPairSet(rows, config, loadPromptTemplate(config.prompt.template), { runId, cycle, selfPairs });
}
