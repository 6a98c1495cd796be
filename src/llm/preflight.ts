/**
 * `archloop preflight`: before committing GPU-days, sample N programs with the run's own
 * prompt from an endpoint and model (or adapter), validate each in the sandbox, repair the
 * failures as the run would, train none, and say what to expect: valid at the first
 * attempt and after repair, failure classes, tokens per second, seconds per valid program
 * and an estimate of one cycle's wall time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../core/config';
import { extractCode, type Extraction } from '../core/extract';
import { chatMessages, type RenderedPrompt } from '../core/prompts';
import { unchangedAsFailure } from '../core/repair';
import { isRepairable } from '../core/repairable';
import type { ValidateOutcome } from '../core/sandbox';
import { buildRequest, settingsFromEnv } from '../sandbox/request';
import { validationRow } from '../sandbox/rows';
import { runSandbox } from '../sandbox/runner';
import { probeEndpoint, missingCapabilities, type Capabilities } from './capabilities';
import type { LlmClient, SampledChoice } from './client';
import { resolveEndpoint } from './endpoint';
import { samplingParams } from './from-config';
import { repairRequest } from './prompts';

export interface PreflightOptions {
  samples: number;
  /** Choices per request (default: the config's samplesPerActivity). */
  batch?: number;
  seed?: number;
  runner?: typeof runSandbox;
  log?: (line: string) => void;
  /** Writes each attempt's reply and verdict here (sample-<i>-attempt-<k>.md), to see what failed. */
  saveDir?: string;
}

export interface SampleReport {
  index: number;
  attempts: number;
  validFirst: boolean;
  valid: boolean;
  firstFailure: string | null;
  finalFailure: string | null;
  /** The valid program (after repair, if it took one) and its graph's structural hash; null when none validated. */
  code: string | null;
  structuralHash: string | null;
}

export interface PreflightReport {
  model: string;
  baseUrl: string;
  capabilities: Capabilities;
  problems: string[];
  samples: number;
  validFirst: number;
  validAfterRepair: number;
  repairs: number;
  failureClasses: Record<string, number>;
  failureClassesAfterRepair: Record<string, number>;
  completionTokens: number;
  tokensPerS: number | null;
  samplingS: number;
  repairS: number;
  validationS: number;
  secondsPerValid: number | null;
  /** One cycle of `sampling.samplesPerCycle` at these rates; training bounded by training.timeLimitS per valid program. */
  cycleEstimateS: { sampling: number; repair: number; validation: number; trainingUpperBound: number; total: number };
  perSample: SampleReport[];
}

interface Attempt {
  extraction: Extraction;
  outcome?: ValidateOutcome;
  failureClass: string | null;
  message: string;
  valid: boolean;
  structuralHash: string | null;
}

function count(values: Array<string | null>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) if (value) out[value] = (out[value] ?? 0) + 1;
  return out;
}

/**
 * `prompts`: one prompt for every batch, or a function giving batch `first`'s prompt (so that
 * two models compared on the same samples see the same prompts: src/llm/compare.ts).
 */
export async function runPreflight(
  config: RunConfig,
  prompts: RenderedPrompt | ((first: number) => RenderedPrompt),
  client: LlmClient,
  options: PreflightOptions,
): Promise<PreflightReport> {
  const log = options.log ?? (() => {});
  const endpoint = resolveEndpoint(config.llm);
  const capabilities = await probeEndpoint(endpoint, config.llm.model, { timeoutMs: config.llm.requestTimeoutS * 1000 });
  const problems = missingCapabilities(capabilities, config, endpoint.baseUrl);
  for (const problem of problems) log(`warning: ${problem}`);
  if (!capabilities.modelServed) throw new Error(problems[0]);

  const runner = options.runner ?? runSandbox;
  const settings = settingsFromEnv();
  let validationS = 0;
  const validate = async (extraction: Extraction): Promise<Attempt> => {
    if (!extraction.ok) return { extraction, failureClass: extraction.failureClass, message: extraction.message, valid: false, structuralHash: null };
    const started = performance.now();
    const outcome = await runner(buildRequest('validate', extraction.code, config, settings));
    validationS += (performance.now() - started) / 1000;
    if (outcome.kind !== 'validate') throw new Error(`runner answered a ${outcome.kind} result to a validate request`);
    const row = validationRow(outcome);
    return { extraction, outcome, failureClass: row.failureClass, message: row.failureMessage ?? '', valid: row.valid, structuralHash: row.structuralHash };
  };

  let completionTokens = 0;
  let samplingS = 0;
  let repairS = 0;
  const tokensOf = (choice: SampledChoice) => choice.usage.completionTokens ?? 0;
  const batch = Math.max(1, options.batch ?? config.sampling.samplesPerActivity);
  const seed = options.seed ?? 20_260_101;
  const reports: SampleReport[] = [];
  let repairs = 0;

  for (let first = 0; first < options.samples; first += batch) {
    const size = Math.min(batch, options.samples - first);
    const prompt = typeof prompts === 'function' ? prompts(first) : prompts;
    const started = performance.now();
    const choices: SampledChoice[] = [];
    for await (const part of client.sample({
      model: config.llm.model,
      messages: chatMessages(prompt.body),
      count: size,
      params: samplingParams(config),
      seed: seed + first,
      ...(prompt.prefill ? { prefill: prompt.prefill } : {}),
    })) {
      choices.push(...part);
    }
    samplingS += (performance.now() - started) / 1000;
    completionTokens += choices.reduce((sum, choice) => sum + tokensOf(choice), 0);
    log(`sampled ${first + size}/${options.samples} (${completionTokens} tokens in ${samplingS.toFixed(0)} s)`);

    // Each sample: validate, then repair while it may be fixed; repairs of a batch run concurrently.
    const batchReports = await Promise.all(
      choices.map(async (choice, i): Promise<SampleReport> => {
        const index = first + i;
        const save = (attemptNumber: number, text: string, verdict: Attempt) => {
          if (!options.saveDir) return;
          mkdirSync(options.saveDir, { recursive: true });
          const status = verdict.valid ? 'valid' : `${verdict.failureClass}: ${verdict.message}`;
          writeFileSync(path.join(options.saveDir, `sample-${index}-attempt-${attemptNumber}.md`), `<!-- ${status.replaceAll('--', '- -')} -->\n${text}\n`);
        };
        let attempt = await validate(extractCode(choice.text, choice.finishReason));
        save(0, choice.text, attempt);
        const firstFailure = attempt.failureClass;
        let attempts = 1;
        while (!attempt.valid && config.sampling.repair !== 'none' && attempts <= config.sampling.repairAttempts && isRepairable(attempt.failureClass)) {
          const code = attempt.extraction.ok ? attempt.extraction.code : '';
          const request = repairRequest(config, { code, failureClass: attempt.failureClass!, message: attempt.message }, {
            body: prompt.body,
            prefill: prompt.prefill,
            hash: prompt.hash,
            template: prompt.template,
          });
          const repairStarted = performance.now();
          let answer: SampledChoice | undefined;
          for await (const part of client.sample({
            model: config.llm.model,
            messages: request.messages,
            count: 1,
            params: samplingParams(config),
            seed: seed + 100_000 + index * 16 + attempts,
            ...(request.prompt.prefill ? { prefill: request.prompt.prefill } : {}),
          })) {
            answer = part[0];
          }
          repairS += (performance.now() - repairStarted) / 1000;
          repairs++;
          attempts++;
          if (!answer) break;
          completionTokens += tokensOf(answer);
          const extraction = unchangedAsFailure(extractCode(answer.text, answer.finishReason), attempt.extraction.ok ? attempt.extraction.code : null);
          if (!extraction.ok && extraction.failureClass === 'unchanged') {
            // Keep the program it was given: a further attempt repairs that, not an empty one.
            attempt = { ...attempt, failureClass: 'unchanged', message: extraction.message };
            continue;
          }
          attempt = await validate(extraction);
          save(attempts - 1, answer.text, attempt);
        }
        log(`sample ${index}: ${attempt.valid ? 'valid' : attempt.failureClass}${attempts > 1 ? ` after ${attempts} attempts (first: ${firstFailure ?? 'valid'})` : ''}`);
        const code = attempt.valid && attempt.extraction.ok ? attempt.extraction.code : null;
        return { index, attempts, validFirst: firstFailure === null, valid: attempt.valid, firstFailure, finalFailure: attempt.valid ? null : attempt.failureClass, code, structuralHash: attempt.valid ? attempt.structuralHash : null };
      }),
    );
    reports.push(...batchReports);
  }

  const validFirst = reports.filter((r) => r.validFirst).length;
  const validAfterRepair = reports.filter((r) => r.valid).length;
  const perSample = (total: number) => total / Math.max(1, options.samples);
  const n = config.sampling.samplesPerCycle;
  const estimate = {
    sampling: perSample(samplingS) * n,
    repair: perSample(repairS) * n,
    validation: perSample(validationS) * n,
    trainingUpperBound: (validAfterRepair / Math.max(1, options.samples)) * n * config.training.timeLimitS,
  };
  const wall = samplingS + repairS + validationS;
  return {
    model: config.llm.model,
    baseUrl: endpoint.baseUrl,
    capabilities,
    problems,
    samples: options.samples,
    validFirst,
    validAfterRepair,
    repairs,
    failureClasses: count(reports.map((r) => r.firstFailure)),
    failureClassesAfterRepair: count(reports.map((r) => r.finalFailure)),
    completionTokens,
    tokensPerS: samplingS + repairS > 0 ? completionTokens / (samplingS + repairS) : null,
    samplingS,
    repairS,
    validationS,
    secondsPerValid: validAfterRepair ? wall / validAfterRepair : null,
    cycleEstimateS: { ...estimate, total: estimate.sampling + estimate.repair + estimate.validation + estimate.trainingUpperBound },
    perSample: reports,
  };
}
