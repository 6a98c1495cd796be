/**
 * The run configuration: one zod schema, JSON-serializable, with the paper's numbers as
 * the `paper` preset and a small CPU-friendly `demo` preset. Every number that docs/design.md
 * quotes lives here as a config value, never as a literal in stage code.
 */
import { z } from 'zod';

export const DatasetName = z.enum(['cifar10', 'fashion-mnist', 'synthetic']);
export type DatasetName = z.infer<typeof DatasetName>;

const positiveInt = z.number().int().positive();
const unit = z.number().min(0).max(1);

export const DatasetConfig = z.strictObject({
  name: DatasetName,
  /** Directory holding the dataset files; empty means the runner's default location. */
  path: z.string().default(''),
  /** Download (with checksum) when the files are missing and the network is reachable. */
  download: z.boolean().default(true),
  /** Sizes of the synthetic learnable dataset (tests, benchmarks). */
  syntheticTrainSize: positiveInt.default(2048),
  syntheticTestSize: positiveInt.default(512),
  /**
   * nn-gpt's evaluation protocol: every batch the network sees (training, test, the validation
   * forward pass) is resized to resize×resize, 256 in the paper's code. null: the dataset's own
   * resolution, the fast default (docs/design.md, "Input resolution").
   */
  resize: positiveInt.max(1024).nullable().default(null),
});

export const ContractConfig = z.strictObject({
  maxParams: positiveInt.default(50_000_000),
  maxFlops: z.number().positive().default(5e10),
  validateBatchSize: positiveInt.default(2),
  validateTimeoutS: z.number().positive().default(60),
  memoryLimitMb: positiveInt.default(4096),
  /** Largest program accepted, in bytes: a bound on the data a program can carry (a table of public test images and their labels). */
  maxCodeBytes: positiveInt.default(32_768),
});

export const TrainingConfig = z.strictObject({
  /** The fixed prm the reference code passes to every generated model. */
  lr: unit.default(0.01),
  momentum: unit.default(0.9),
  dropout: unit.default(0.2),
  batchSize: positiveInt.default(16),
  epochs: z.literal(1).default(1),
  timeLimitS: z.number().positive().default(900),
  /** Accuracy below this counts as a failed model (reference code: 0.12). */
  failBelowAccuracy: unit.default(0.12),
  device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  bf16: z.boolean().default(false),
  channelsLast: z.boolean().default(false),
  threads: positiveInt.default(2),
  seed: z.number().int().nonnegative().default(42),
  /** Cap on training images per epoch (0 = the whole training set); the sandbox holds only these. */
  maxTrainImages: z.number().int().nonnegative().default(0),
  /** Each test pixel is moved by a per-job random amount of at most this many intensity levels, so no test image matches its public copy byte for byte. */
  testNoise: z.number().int().min(0).max(32).default(4),
  /** The test images reach a job only after its learn returns; from then on it has max(evalWindowMinS, evalWindowShare × its time so far) to send its predictions. */
  evalWindowMinS: z.number().positive().default(30),
  evalWindowShare: z.number().nonnegative().default(0.5),
});

export const LlmConfig = z.strictObject({
  /** OpenAI-compatible endpoint; empty means the embedded server started by `archloop services up`. */
  baseUrl: z.string().default(''),
  /** Base model name as the server knows it. */
  model: z.string().min(1),
  /**
   * Removed: the key comes from the worker's own ARCHLOOP_LLM_API_KEY (or OPENAI_API_KEY),
   * never from a variable a run names. Still accepted (and dropped, with a warning from the
   * CLI) so that runs started before the change resume.
   */
  apiKeyEnv: z
    .string()
    .optional()
    .transform(() => undefined)
    .meta({ deprecated: true }),
  requestTimeoutS: z.number().positive().default(600),
  maxRetries: z.number().int().nonnegative().default(4),
  /** Backoff between retries of one request: base × 2^attempt (with jitter), capped. */
  retryBaseDelayS: z.number().positive().default(1),
  retryMaxDelayS: z.number().positive().default(30),
  /** Whether the server accepts several choices per request (`n`). */
  supportsN: z.boolean().default(true),
});

export const SamplingConfig = z.strictObject({
  samplesPerCycle: positiveInt.default(150),
  /** Samples requested by one activity (and one request when `n` is supported). */
  samplesPerActivity: positiveInt.default(10),
  temperature: z.number().min(0).max(2).default(0.7),
  topP: unit.default(0.95),
  topK: z.number().int().nonnegative().default(100),
  maxNewTokens: positiveInt.default(2048),
  /**
   * What happens to a candidate that fails extraction or validation (syntax, contract,
   * import, instantiation, the forward check): `feedback` asks the LLM to fix it, quoting
   * the error, the line and what the contract wants; `resample` draws a fresh sample from
   * the same prompt (nn-gpt's rejection resampling); `none` keeps the failure.
   */
  repair: z.enum(['feedback', 'resample', 'none']).default('feedback'),
  /** Further attempts per candidate after its first (0 = no repair). */
  repairAttempts: z.number().int().min(0).max(10).default(2),
  /**
   * Cycle 0 samples this many programs from the base model, before any fine-tune, with
   * cycle 1's prompt, and validates them (no repair, no training): the baseline that
   * shows whether fine-tuning made the model a better designer.
   */
  baselineSamples: z.number().int().nonnegative().default(0),
});

export const PromptConfig = z.strictObject({
  template: z.string().min(1).default('design-v2'),
  /**
   * Start the assistant's reply with the template's fixed header (prompts/<template>.reply.md:
   * imports, supported_hyperparameters(), the Net.__init__ signature), which the model
   * continues. Needs vLLM's `continue_final_message` (vLLM and the embedded server have it).
   */
  prefill: z.boolean().default(true),
  /**
   * The message that sends a failed program back with its error (prompts/<name>.md). v2
   * quotes the program first and the error and its fix last: the 1.5B returned its program
   * unchanged 1 time in 8 with it, 5 in 10 with v1 (bench/RESULTS.md, preflight).
   */
  repairTemplate: z.string().min(1).default('repair-v2'),
  includeReference: z.boolean().default(true),
  referenceMinAccuracy: unit.default(0.4),
  /** Longest reference program quoted in a prompt (~1.2k tokens: prompt + 2048 new tokens fit 4k). */
  referenceMaxChars: positiveInt.default(4000),
});

export const NoveltyConfig = z.strictObject({
  shingleSize: positiveInt.default(7),
  numPerm: positiveInt.default(128),
  threshold: unit.default(0.85),
  /**
   * Weight of a missed near-duplicate when the LSH band layout is chosen (datasketch's
   * optimisation; its own default weighs misses and false hits equally). Every LSH hit is
   * confirmed by estimated Jaccard, so false hits cost only a comparison: misses weigh more.
   */
  lshFalseNegativeWeight: unit.default(0.99),
  normalizeIdentifiers: z.boolean().default(true),
  normalizeNumbers: z.boolean().default(true),
  normalizeStrings: z.boolean().default(true),
  /** Also reject a candidate whose graph-IR structural hash is already known. */
  structural: z.boolean().default(true),
});

export const SelectionConfig = z.strictObject({
  mode: z.enum(['threshold', 'percentile']).default('threshold'),
  minAccuracy: unit.default(0.4),
  fallbackAccuracy: unit.default(0.35),
  /** Fall back to `fallbackAccuracy` when fewer than this many qualify. */
  fallbackMinCount: z.number().int().nonnegative().default(15),
  /** In percentile mode: admit novel candidates at or above this accuracy percentile. */
  percentile: unit.default(0.8),
});

export const LoraConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** Cycle 0: fine-tune on the LEMUR seed pairs before cycle 1 (the paper starts from LEMUR). */
  seedFineTune: z.boolean().default(true),
  /** Base model for fine-tuning (a local directory or a hub id when online). */
  baseModel: z.string().min(1),
  r: positiveInt.default(32),
  alpha: positiveInt.default(32),
  dropout: unit.default(0.05),
  targetModules: z
    .array(z.string().min(1))
    .min(1)
    .default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
  lr: z.number().positive().default(1e-5),
  epochs: positiveInt.default(5),
  batchSize: positiveInt.default(1),
  maxSeqLen: positiveInt.default(2048),
  bf16: z.boolean().default(true),
  load4bit: z.boolean().default(true),
  checkpointEvery: positiveInt.default(50),
  /** Cap on the number of training pairs per fine-tune (0 = all). */
  maxPairs: z.number().int().nonnegative().default(0),
  /** Cap on optimizer steps per fine-tune (0 = the pairs decide: epochs for the seed, passes after a cycle). */
  maxSteps: z.number().int().nonnegative().default(0),
  /** After cycle n: how many times each program admitted in cycle n is trained on (src/llm/finetune-pairs.ts). */
  passes: positiveInt.default(2),
  /**
   * After cycle n: the largest share of the fine-tune's examples that replay older pairs
   * (earlier admissions and seeds, drawn by lora.seed), so the adapter keeps what it knew.
   */
  replayShare: z.number().min(0).max(0.9).default(0.25),
  /**
   * What the seed fine-tune (cycle 0) learns from: LEMUR's programs fitted to the prompt's
   * header, the base model's own programs that validated at the run's shape (sampled once
   * by `archloop seed-adapter --from self`, src/llm/self-seed.ts), or both.
   */
  seedFrom: z.enum(['lemur', 'self', 'both']).default('lemur'),
  /** Programs the self-seed phase samples from the base model (lora.seedFrom self or both). */
  selfSamples: positiveInt.default(48),
  /** Cap on the seed fine-tune's (cycle 0) steps instead of maxSteps (0 = the same as maxSteps). */
  seedMaxSteps: z.number().int().nonnegative().default(0),
  /**
   * Train the seed adapter once per machine into a cache keyed by base model, pairs and LoRA
   * settings, and reuse it (its many steps are the expensive part on a CPU; `archloop seed-adapter`).
   */
  seedCache: z.boolean().default(true),
  /**
   * Fine-tune after the run's last cycle too. Its adapter is sampled only by cycles that come
   * after it, so a run that ends there can skip it (the demo: one LoRA step saved); a run
   * extended later fine-tunes on that cycle first, before the next one samples.
   */
  fineTuneLastCycle: z.boolean().default(true),
  seed: z.number().int().nonnegative().default(42),
  /**
   * The adapter gate: after a fine-tune, `samples` paired samples (same prompts, same seeds)
   * of the new adapter against the model serving; the new one is published unless it is
   * worse at `alpha` (exact McNemar) on novel valid designs per sample. 0 = no gate.
   */
  gate: z
    .strictObject({
      samples: z.number().int().nonnegative().default(0),
      alpha: z.number().gt(0).lt(1).default(0.05),
    })
    .prefault({}),
});

const seconds = z.number().positive();
export const OrchestrationConfig = z.strictObject({
  sampleTimeoutS: seconds.default(1800),
  /** Checking the seed corpus at the run's shape: each unchecked entry is one sandbox validation. */
  seedCheckTimeoutS: seconds.default(24 * 3600),
  /**
   * The validate activity, its wait for a sandbox included: a worker runs up to 8 at once
   * and as many sandboxes as it has cores less one, so jobs queue; the activity heartbeats
   * while queued, and the candidate's own limit (contract.validateTimeoutS) starts with its
   * sandbox.
   */
  validateTimeoutS: seconds.default(1800),
  trainTimeoutS: seconds.default(3600),
  noveltyTimeoutS: seconds.default(600),
  fineTuneTimeoutS: seconds.default(6 * 3600),
  publishTimeoutS: seconds.default(600),
  heartbeatTimeoutS: seconds.default(120),
  maxAttempts: positiveInt.default(5),
});

export const RunConfig = z.strictObject({
  name: z.string().min(1).default('archloop run'),
  preset: z.string().default('custom'),
  cycles: z.number().int().nonnegative().max(10_000),
  dataset: DatasetConfig,
  contract: ContractConfig.prefault({}),
  training: TrainingConfig.prefault({}),
  llm: LlmConfig,
  sampling: SamplingConfig.prefault({}),
  prompt: PromptConfig.prefault({}),
  novelty: NoveltyConfig.prefault({}),
  selection: SelectionConfig.prefault({}),
  lora: LoraConfig,
  orchestration: OrchestrationConfig.prefault({}),
});
export type RunConfig = z.infer<typeof RunConfig>;
export type RunConfigInput = z.input<typeof RunConfig>;

/** What the sandbox adds to a stage's own limit (src/sandbox/request.ts: outerTimeoutS's defaults). */
export const SANDBOX_GRACE_S = 60;
export const RUNNER_START_MARGIN_S = 120;

/**
 * Checks between fields, one issue per bad field: settings that each look fine but
 * together make activities time out before the work they wrap can finish.
 */
export function crossFieldIssues(c: RunConfig): Array<{ path: string[]; message: string }> {
  const issues: Array<{ path: string[]; message: string }> = [];
  const o = c.orchestration;
  const train = c.training.timeLimitS + SANDBOX_GRACE_S + RUNNER_START_MARGIN_S;
  if (o.trainTimeoutS < train) {
    issues.push({
      path: ['orchestration', 'trainTimeoutS'],
      message: `${o.trainTimeoutS} s is shorter than training.timeLimitS + ${SANDBOX_GRACE_S} s sandbox grace + ${RUNNER_START_MARGIN_S} s runner start = ${train} s`,
    });
  }
  const validate = c.contract.validateTimeoutS + RUNNER_START_MARGIN_S;
  if (o.validateTimeoutS < validate) {
    issues.push({
      path: ['orchestration', 'validateTimeoutS'],
      message: `${o.validateTimeoutS} s is shorter than contract.validateTimeoutS + ${RUNNER_START_MARGIN_S} s runner start = ${validate} s`,
    });
  }
  if (c.sampling.samplesPerActivity > c.sampling.samplesPerCycle) {
    issues.push({
      path: ['sampling', 'samplesPerActivity'],
      message: `${c.sampling.samplesPerActivity} is more than sampling.samplesPerCycle (${c.sampling.samplesPerCycle})`,
    });
  }
  // Only the stages that heartbeat (src/workflows/activities.ts).
  const heartbeating = { sampleTimeoutS: o.sampleTimeoutS, validateTimeoutS: o.validateTimeoutS, noveltyTimeoutS: o.noveltyTimeoutS, trainTimeoutS: o.trainTimeoutS, fineTuneTimeoutS: o.fineTuneTimeoutS };
  const notAbove = Object.entries(heartbeating).filter(([, timeout]) => timeout <= o.heartbeatTimeoutS);
  if (notAbove.length) {
    issues.push({
      path: ['orchestration', 'heartbeatTimeoutS'],
      message: `${o.heartbeatTimeoutS} s must be below every stage timeout it guards, but ${notAbove.map(([k, v]) => `orchestration.${k} is ${v} s`).join(', ')}`,
    });
  }
  if (c.llm.requestTimeoutS > o.sampleTimeoutS) {
    issues.push({
      path: ['llm', 'requestTimeoutS'],
      message: `${c.llm.requestTimeoutS} s is longer than orchestration.sampleTimeoutS (${o.sampleTimeoutS} s): one request could outlive its activity`,
    });
  }
  if (c.llm.retryBaseDelayS > c.llm.retryMaxDelayS) {
    issues.push({ path: ['llm', 'retryBaseDelayS'], message: `${c.llm.retryBaseDelayS} s is more than llm.retryMaxDelayS (${c.llm.retryMaxDelayS} s)` });
  }
  if (c.selection.fallbackAccuracy > c.selection.minAccuracy) {
    issues.push({
      path: ['selection', 'fallbackAccuracy'],
      message: `${c.selection.fallbackAccuracy} is above selection.minAccuracy (${c.selection.minAccuracy}): the fallback would be stricter`,
    });
  }
  return issues;
}

/**
 * A config about to start a run: the schema plus the cross-field checks. Stored configs
 * (runs already started) are re-read with RunConfig alone, so a check added later never
 * fails a run that is under way.
 */
export const NewRunConfig = RunConfig.superRefine((config, ctx) => {
  for (const issue of crossFieldIssues(config)) ctx.addIssue({ code: 'custom', input: config, ...issue });
});

/** Fields that are still accepted but do nothing; one warning line each. */
export function configWarnings(input: unknown): string[] {
  const llm = isPlainObject(input) && isPlainObject(input.llm) ? input.llm : {};
  return 'apiKeyEnv' in llm
    ? ['llm.apiKeyEnv is ignored: the worker sends its own $ARCHLOOP_LLM_API_KEY (or $OPENAI_API_KEY), and only to its own endpoint (docs/llm-client.md)']
    : [];
}

/** The paper's setup (Khalid & Ignatov 2026 and its reference code), see docs/design.md. */
export const paperPreset: RunConfigInput = {
  name: 'paper reproduction',
  preset: 'paper',
  cycles: 22,
  dataset: { name: 'cifar10' },
  llm: { model: 'deepseek-coder-7b-instruct-v1.5' },
  sampling: { samplesPerCycle: 150, temperature: 0.7, topP: 0.95, topK: 100, maxNewTokens: 2048 },
  novelty: { shingleSize: 7, numPerm: 128, threshold: 0.85 },
  selection: { minAccuracy: 0.4, fallbackAccuracy: 0.35, fallbackMinCount: 15 },
  training: { lr: 0.01, momentum: 0.9, dropout: 0.2, batchSize: 16, failBelowAccuracy: 0.12, device: 'auto' },
  lora: {
    baseModel: 'deepseek-ai/deepseek-coder-7b-instruct-v1.5',
    r: 32,
    alpha: 32,
    dropout: 0.05,
    lr: 1e-5,
    epochs: 5,
    bf16: true,
    load4bit: true,
    seedFineTune: true,
    // nn-gpt trains 5 epochs per cycle over the corpus: each admission 5 times, with as many
    // older pairs replayed beside them.
    passes: 5,
    replayShare: 0.5,
  },
};

/**
 * Small enough for 2 CPU cores: Fashion-MNIST, the embedded Qwen2.5-Coder-1.5B, 2 cycles of 6
 * programs after a 6-program baseline of the base model. Costs on 2 shared cores (bench/RESULTS.md,
 * docs/llm.md): sampling ~4–8 tokens/s for the whole batch, a LoRA step at 1024 tokens ~5 min.
 */
export const demoPreset: RunConfigInput = {
  name: 'demo',
  preset: 'demo',
  cycles: 2,
  dataset: { name: 'fashion-mnist' },
  contract: { maxParams: 2_000_000, maxFlops: 2e8 },
  // One training thread: on a shared 2-core machine two threads measured erratic (bench/RESULTS.md).
  training: { batchSize: 64, timeLimitS: 180, threads: 1, device: 'cpu', maxTrainImages: 12_000 },
  // One request with n=6 decodes the six programs together (the server evaluates the prompt once).
  llm: { model: 'qwen2.5-coder-1.5b-instruct', requestTimeoutS: 1700 },
  sampling: { samplesPerCycle: 6, samplesPerActivity: 6, maxNewTokens: 768, repairAttempts: 1, baselineSamples: 6 },
  // design-v3 prefills the training methods too, so the 1.5B writes only the layers and
  // forward: 4/12 valid at the first attempt, 6/12 after one repair, where design-v2 gave
  // 2/12 and 5/12 (bench/RESULTS.md, preflight).
  prompt: { template: 'design-v3', referenceMaxChars: 1500 },
  selection: { minAccuracy: 0.4, fallbackAccuracy: 0.35, fallbackMinCount: 2 },
  lora: {
    baseModel: 'qwen2.5-coder-1.5b-instruct',
    r: 8,
    alpha: 16,
    lr: 2e-4,
    epochs: 1,
    bf16: false,
    load4bit: false,
    // The design prompt (~2.5k characters) plus a seed program of up to 3.5k (scripts/demo.sh
    // imports no longer ones), at a conservative 3 characters a token. Steps cost by the
    // pair's real length, not by this cap.
    maxSeqLen: 2048,
    checkpointEvery: 1,
    maxPairs: 16,
    // After a cycle: each admission twice, and at most one older pair in five replayed; with
    // 1–3 admissions that is 2–7 steps of ~85 s on 2 cores. The seed adapter takes one epoch
    // over its (at most maxPairs) seed pairs, trained once per machine and cached
    // (lora.seedCache): 16 steps, about 30 min on 2 cores, which `archloop seed-adapter
    // --preset demo` spends ahead of a run.
    passes: 2,
    replayShare: 0.2,
    seedMaxSteps: 16,
    // The adapter after the last cycle would be trained and never sampled in the demo.
    fineTuneLastCycle: false,
  },
  orchestration: { sampleTimeoutS: 1800, trainTimeoutS: 900, fineTuneTimeoutS: 5400 },
};

export const presets = { paper: paperPreset, demo: demoPreset } as const;
export type PresetName = keyof typeof presets;
export const PresetName = z.enum(['paper', 'demo']);

/**
 * A config error that names each offending field, one line per field, e.g.
 * `sampling.topP: Too big: expected number to be <=1`.
 */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.length === 1 ? `invalid config: ${issues[0]}` : `invalid config:\n${issues.map((i) => `  ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}

/** Validates a stored run config (a run already started); throws ConfigError naming every bad field. */
export function parseConfig(input: unknown): RunConfig {
  const result = RunConfig.safeParse(input);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  return result.data;
}

/** Validates the config of a run about to start: the schema and the cross-field checks. */
export function parseNewConfig(input: unknown): RunConfig {
  const result = NewRunConfig.safeParse(input);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  return result.data;
}

/** Deep-merges plain JSON objects (arrays and scalars in `override` replace those in `base`). */
export function mergeJson(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = mergeJson(base[key], value);
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A preset with optional overrides (e.g. a user's JSON file), validated as a new run's config. */
export function buildConfig(preset: PresetName, overrides: unknown = {}): RunConfig {
  return parseNewConfig(mergeJson(presets[preset], overrides));
}
