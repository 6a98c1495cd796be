/**
 * `archloop compare A B`: two models (the base model, an adapter) sampled on the same
 * prompts with the same seeds — batch k of both sides gets the same design prompt (the run's
 * template, a reference drawn from the seed corpus by k, as a run's cycle 1 draws them) and
 * sample i the same seed — then validated and repaired as a run would (src/llm/preflight.ts).
 * Per side: valid at the first attempt, after repair, and novel-valid (valid and a
 * near-duplicate neither of the seed corpus nor of an earlier sample of that side), each
 * with a Wilson 95 % interval; between the sides, the exact McNemar test on each paired
 * outcome, and the failure classes side by side.
 *
 * Seeds: COMPARE_SEED upward, a range no training data is ever sampled from (the self-seed
 * phase samples from SELF_SEED_BASE, runs from hashes of their batch keys).
 */
import type { RunConfig } from '../core/config';
import { novelIndexes, fingerprint, type KnownProgram } from '../core/novelty';
import { pairedComparison, rateOf, type PairedOutcome, type Rate } from '../core/paired';
import type { RenderedPrompt } from '../core/prompts';
import type { LlmClient } from './client';
import { runPreflight, type PreflightReport, type SampleReport } from './preflight';

/** First sampling seed of a comparison (sample i: COMPARE_SEED + i; its repairs derive from it). */
export const COMPARE_SEED = 1_900_000_000;

export interface CompareSide {
  /** What the user named (`base`, an adapter name, a directory). */
  label: string;
  /** The model name the endpoint serves it under. */
  model: string;
}

/** One side: its rates, and what its preflight run counted, as that run reported it. */
export interface SideSummary extends Pick<PreflightReport, 'failureClasses' | 'failureClassesAfterRepair' | 'completionTokens' | 'samplingS' | 'repairS'> {
  label: string;
  model: string;
  validFirst: Rate;
  validAfterRepair: Rate;
  novelValid: Rate;
  perSample: Array<Omit<SampleReport, 'code'> & { novel: boolean }>;
}

export interface Comparison {
  kind: 'archloop-comparison';
  createdAt: string;
  preset: string;
  template: string;
  samples: number;
  seed: number;
  repair: boolean;
  a: SideSummary;
  b: SideSummary;
  /** B against A, paired by sample index. */
  firstAttempt: PairedOutcome;
  afterRepair: PairedOutcome;
  novelValid: PairedOutcome;
  /** A's most frequent first-attempt failure class and its count on each side. */
  dominantFailure: { failureClass: string; a: number; b: number } | null;
}

export interface CompareOptions {
  samples: number;
  batch: number;
  seed?: number;
  /** The prompt of the batch starting at sample `first` (the same for both sides). */
  promptFor: (first: number) => RenderedPrompt;
  /** The seed corpus's programs, for novelty. */
  corpus: ReadonlyArray<{ code: string; structural_hash: string | null }>;
  log?: (line: string) => void;
  runner?: Parameters<typeof runPreflight>[3]['runner'];
}

function summarize(side: CompareSide, report: PreflightReport, novel: Set<number>): SideSummary {
  const n = report.samples;
  return {
    label: side.label,
    model: side.model,
    validFirst: rateOf(report.validFirst, n),
    validAfterRepair: rateOf(report.validAfterRepair, n),
    novelValid: rateOf(novel.size, n),
    failureClasses: report.failureClasses,
    failureClassesAfterRepair: report.failureClassesAfterRepair,
    completionTokens: report.completionTokens,
    samplingS: report.samplingS,
    repairS: report.repairS,
    perSample: report.perSample.map(({ code: _code, ...rest }) => ({ ...rest, novel: novel.has(rest.index) })),
  };
}

const outcomes = (report: PreflightReport, pick: (sample: SampleReport) => boolean) => new Map(report.perSample.map((s) => [s.index, pick(s)]));

/** Samples, validates and repairs both sides, A first, then compares them. */
export async function compareModels(config: RunConfig, a: CompareSide, b: CompareSide, clients: { a: LlmClient; b: LlmClient }, options: CompareOptions): Promise<Comparison> {
  const seed = options.seed ?? COMPARE_SEED;
  const corpus: KnownProgram[] = options.corpus.map((entry) => ({ signature: fingerprint(entry.code, config.novelty).signature, structuralHash: entry.structural_hash }));
  const sides: Array<[CompareSide, LlmClient]> = [
    [a, clients.a],
    [b, clients.b],
  ];
  const reports: PreflightReport[] = [];
  for (const [side, client] of sides) {
    options.log?.(`${side.label} (${side.model}): ${options.samples} samples`);
    const sideConfig = { ...config, llm: { ...config.llm, model: side.model } };
    const log = options.log ? (line: string) => options.log!(`  ${side.label}: ${line}`) : undefined;
    reports.push(await runPreflight(sideConfig, options.promptFor, client, { samples: options.samples, batch: options.batch, seed, log, runner: options.runner }));
  }
  const [ra, rb] = reports as [PreflightReport, PreflightReport];
  const novelOf = (report: PreflightReport) =>
    novelIndexes(
      report.perSample.filter((s) => s.code !== null).map((s) => ({ index: s.index, code: s.code!, structuralHash: s.structuralHash })),
      corpus,
      config.novelty,
    );
  const [na, nb] = [novelOf(ra), novelOf(rb)];
  const top = Object.entries(ra.failureClasses).sort((x, y) => y[1] - x[1])[0];
  return {
    kind: 'archloop-comparison',
    createdAt: new Date().toISOString(),
    preset: config.preset,
    template: config.prompt.template,
    samples: options.samples,
    seed,
    repair: config.sampling.repair !== 'none',
    a: summarize(a, ra, na),
    b: summarize(b, rb, nb),
    firstAttempt: pairedComparison(outcomes(ra, (s) => s.validFirst), outcomes(rb, (s) => s.validFirst)),
    afterRepair: pairedComparison(outcomes(ra, (s) => s.valid), outcomes(rb, (s) => s.valid)),
    novelValid: pairedComparison(
      new Map(ra.perSample.map((s) => [s.index, na.has(s.index)])),
      new Map(rb.perSample.map((s) => [s.index, nb.has(s.index)])),
    ),
    dominantFailure: top ? { failureClass: top[0], a: top[1], b: rb.failureClasses[top[0]] ?? 0 } : null,
  };
}
