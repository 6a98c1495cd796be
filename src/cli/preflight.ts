/**
 * `archloop preflight`: sample N programs with the run's own prompt from an endpoint and
 * model, validate (and repair) each, train none, and print what to expect (src/llm/preflight.ts).
 */
import type { Command } from 'commander';
import { mergeJson, parseConfig, type RunConfig } from '../core/config';
import { renderDesignPrompt, taskFromConfig } from '../core/prompts';
import { llmClientFromConfig } from '../llm/from-config';
import { runPreflight, type PreflightReport } from '../llm/preflight';
import { loadPromptTemplate } from '../llm/prompt-files';
import { serveAdapterDir } from '../llm/serve-adapter';
import { readCliConfig } from './config-file';
import { positiveInt, formatCounts } from './parse';

interface PreflightCliOptions {
  preset: string;
  config?: string;
  samples: number;
  batch?: number;
  llmUrl?: string;
  model?: string;
  seed?: number;
  json?: boolean;
  save?: string;
  adapter?: string;
}

export function preflightConfig(options: PreflightCliOptions): RunConfig {
  const base = readCliConfig(options.preset, options.config);
  const llm = { ...(options.llmUrl ? { baseUrl: options.llmUrl } : {}), ...(options.model ? { model: options.model } : {}) };
  return parseConfig(mergeJson(base, { llm }));
}

const percent = (part: number, whole: number) => (whole ? `${((100 * part) / whole).toFixed(0)} %` : '—');
const duration = (s: number) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);

export function describeReport(report: PreflightReport): string {
  const { samples } = report;
  return [
    `model ${report.model} at ${report.baseUrl}`,
    `valid at the first attempt: ${report.validFirst}/${samples} (${percent(report.validFirst, samples)}); failures: ${formatCounts(report.failureClasses)}`,
    `valid after repair:         ${report.validAfterRepair}/${samples} (${percent(report.validAfterRepair, samples)}) with ${report.repairs} repair attempts; still failing: ${formatCounts(report.failureClassesAfterRepair)}`,
    `speed: ${report.tokensPerS?.toFixed(1) ?? '—'} tokens/s; ${report.secondsPerValid === null ? 'no valid program' : `${report.secondsPerValid.toFixed(0)} s per valid program`} (sampling ${duration(report.samplingS)}, repair ${duration(report.repairS)}, validation ${duration(report.validationS)})`,
    `one cycle of this config: about ${duration(report.cycleEstimateS.sampling + report.cycleEstimateS.repair + report.cycleEstimateS.validation)} to sample, repair and validate, plus at most ${duration(report.cycleEstimateS.trainingUpperBound)} of training`,
    ...report.problems.map((problem) => `warning: ${problem}`),
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('preflight')
    .description("sample programs with a run's prompts from an endpoint, validate and repair them (no training), and report what to expect")
    .option('--preset <name>', 'demo | paper', 'demo')
    .option('--config <file.json>', 'JSON overrides merged over the preset')
    .option('--samples <n>', 'programs to sample', positiveInt, 12)
    .option('--batch <n>', 'choices per request (default: sampling.samplesPerActivity)', positiveInt)
    .option('--llm-url <url>', 'an OpenAI-compatible endpoint (default: the config, else the embedded server)')
    .option('--model <name>', 'model or adapter name the endpoint serves (default: llm.model)')
    .option('--seed <n>', 'base sampling seed', positiveInt)
    .option('--json', 'print one JSON object')
    .option('--save <dir>', "write each attempt's reply and verdict to this directory")
    .option('--adapter <dir>', 'load this PEFT adapter into the endpoint and sample from it (e.g. a seed adapter)')
    .action(async (options: PreflightCliOptions) => {
      let config = preflightConfig(options);
      if (options.adapter) config = parseConfig(mergeJson(config, { llm: { model: await serveAdapterDir(config, options.adapter, 'preflight') } }));
      const prompt = renderDesignPrompt(loadPromptTemplate(config.prompt.template), taskFromConfig(config), undefined, { prefill: config.prompt.prefill });
      const log = options.json ? undefined : (line: string) => console.error(line);
      const report = await runPreflight(config, prompt, llmClientFromConfig(config), { samples: options.samples, batch: options.batch, seed: options.seed, log, saveDir: options.save });
      console.log(options.json ? JSON.stringify(report) : describeReport(report));
    });
}
