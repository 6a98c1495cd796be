/**
 * Repair from errors (pure): what a failed candidate is told so that a small model can fix
 * it. A raw traceback appended to the prompt fixed nothing when tried (the model returned
 * its program unchanged), so the feedback names the line, says what is wrong in the
 * contract's terms, and says what to write instead.
 */
import type { Extraction } from './extract';
import { renderTemplate } from './prompts';

export { isRepairable, REPAIRABLE } from './repairable';

export interface FailedProgram {
  /** The program, or what extraction found ('' when nothing). */
  code: string;
  failureClass: string;
  message: string;
}

export interface Diagnosis {
  title: string;
  /** 1-based line in `code`, when the failure points at one. */
  line: number | null;
  lineText: string;
  problem: string;
  advice: string;
}

const TITLES: Record<string, string> = {
  'empty-completion': 'empty reply',
  'no-code': 'no program',
  truncated: 'program cut off',
  syntax: 'syntax error',
  contract: 'the required interface is not met',
  import: 'the file fails when it is imported',
  instantiate: 'Net(in_shape, out_shape, prm, device) fails',
  forward: 'the forward pass fails',
  shape: 'wrong output',
  'non-finite': 'the output contains NaN or inf',
  'too-large': 'the network is too large',
  unchanged: 'the previous fix changed nothing',
};

/** Where the runner says the failure happened: `(line N: code)` or `line N, column M:`. */
export function failureLine(message: string): number | null {
  const match = /\(line (\d+): [^\n]*\)\s*$/.exec(message) ?? /^line (\d+)(?:, column \d+)?:/.exec(message);
  return match ? Number(match[1]) : null;
}

/** The message without its `(line N: code)` suffix (the line is quoted separately). */
function withoutLocation(message: string): string {
  return message.replace(/\s*\(line \d+: [^\n]*\)\s*$/, '');
}

interface Rule {
  test: RegExp;
  advice: (match: RegExpExecArray, limits: RepairLimits) => string;
}

export interface RepairLimits {
  maxParams: number;
  /** The batch the validation's forward pass uses (contract.validateBatchSize). */
  validateBatch: number;
}

const FLATTEN =
  'End the convolutional part with `nn.AdaptiveAvgPool2d(1)` and `torch.flatten(x, 1)`; then the first `nn.Linear` takes exactly the last convolution\'s out_channels.';

/** Specific advice for the messages small models produce most; the class default otherwise. */
const RULES: Record<string, Rule[]> = {
  contract: [
    { test: /supported_hyperparameters\(\)/, advice: () => "Define at the top level of the file: `def supported_hyperparameters():` returning the set `{'lr', 'momentum'}`." },
    { test: /no class Net/, advice: () => 'Define `class Net(nn.Module)` at the top level of the file.' },
    { test: /__init__/, advice: () => 'Write `def __init__(self, in_shape, out_shape, prm, device):` exactly, and call `super().__init__()` first.' },
    { test: /lacks method\(s\): (.+)$/, advice: (m) => `Add the missing method(s) ${m[1]} to class Net: forward(self, x), train_setup(self, prm) and learn(self, train_data).` },
    { test: /not a subclass of torch\.nn\.Module/, advice: () => 'Net must be declared as `class Net(nn.Module)`.' },
    { test: /module-level example code/, advice: () => 'Delete the example code after the classes (e.g. `model = Net(...)`, `print(...)`): the file must only define supported_hyperparameters, Net and its helpers.' },
  ],
  forward: [
    {
      test: /mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)/,
      // The exact number first: in preflight the 1.5B returned such programs unchanged 4 times
      // in 5 when told only to restructure the flatten. More rows than the batch means the
      // input still has its spatial dimensions (seen: AdaptiveAvgPool2d(1) used as a flatten).
      advice: (m, limits) => {
        const [rows, columns, built] = [Number(m[1]), Number(m[2]), Number(m[3])];
        if (rows !== limits.validateBatch && rows % limits.validateBatch === 0) {
          const features = (rows / limits.validateBatch) * columns;
          const then = features === built ? 'then the layer fits as it is' : `then construct it as \`nn.Linear(${features}, …)\``;
          return `The tensor reaching a linear layer is not flattened (${rows} rows for a batch of ${limits.validateBatch}): add \`x = torch.flatten(x, 1)\` right before it in forward; ${then}.`;
        }
        return `A linear layer receives ${columns} features per sample but was built for ${built}: construct it as \`nn.Linear(${columns}, …)\` (same out_features). Or: ${FLATTEN}`;
      },
    },
    {
      test: /expected input\[[^\]]*\] to have (\d+) channels, but got (\d+) channels/,
      advice: (m) =>
        `A convolution expects ${m[1]} input channels but receives ${m[2]}: each Conv2d's in_channels must equal the previous layer's out_channels, and the first one in_shape[1] (\`in_channels\`).`,
    },
    { test: /size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)/, advice: () => 'Two tensors that are added or concatenated have different sizes: give both branches the same channels and the same stride.' },
    { test: /Calculated (?:padded )?input size|Output size is too small|Kernel size can't be greater/i, advice: () => 'The feature map became smaller than a kernel: use fewer pooling or stride-2 layers (the input is small), or padding=1 on 3×3 convolutions.' },
    { test: /NoneType/, advice: () => 'forward must end with `return x` (the logits).' },
  ],
  instantiate: [
    { test: /'tuple' object|object cannot be interpreted as an integer|unsupported operand type\(s\).*tuple/, advice: () => 'in_shape and out_shape are tuples: use `in_shape[1]` for the input channels and `out_shape[0]` for the number of classes.' },
  ],
  // The budget's numbers and by how much it is missed: the seed adapter's programs were often
  // a LEMUR-sized 3.3M parameters against the demo's 2M.
  'too-large': [
    {
      test: /^(\d+) parameters > limit (\d+)/,
      advice: (m) => {
        const [params, limit] = [Number(m[1]), Number(m[2])];
        return `The network has ${params.toLocaleString('en-US')} parameters, ${(params / limit).toFixed(1)}× the budget of ${limit.toLocaleString('en-US')}: shrink its largest layers at least that much — usually the first \`nn.Linear\` after the flatten and the widest convolutions (32–128 channels are enough).`;
      },
    },
    {
      test: /^([\d.e+]+) FLOPs per image > limit ([\d.e+]+)/,
      advice: (m) =>
        `The network needs ${m[1]} FLOPs per image, over the budget of ${m[2]}: downsample early (a stride-2 convolution or a pooling right after the first convolution) and keep few channels while the feature map is large.`,
    },
  ],
  import: [
    { test: /No module named '([^']+)'/, advice: (m) => `The module ${m[1]} is not available: import only torch and the Python standard library.` },
    { test: /NameError: name '([^']+)' is not defined/, advice: (m) => `\`${m[1]}\` is used before it is defined or imported; and the file must not run example code at import.` },
  ],
};

const DEFAULT_ADVICE: Record<string, (limits: RepairLimits) => string> = {
  'empty-completion': () => 'Reply with the complete program in one ```python code block.',
  'no-code': () => 'Reply with the complete program in one ```python code block that defines class Net.',
  truncated: () => 'The reply hit the length limit before the program ended. Write a shorter program: fewer layers, no comments, no explanation.',
  syntax: () => 'Fix the syntax at that line; keep 4-space indentation inside the class and its methods.',
  contract: () => 'The file needs `supported_hyperparameters()` and `class Net(nn.Module)` with __init__(self, in_shape, out_shape, prm, device), forward, train_setup and learn.',
  import: () => 'The file must import without errors: import only torch and the standard library, and run no code outside functions and classes.',
  instantiate: () => 'Building the layers in __init__ fails: in_shape = (B, C, H, W), so the channels are in_shape[1]; out_shape[0] is the number of classes.',
  forward: () => `Make the layer sizes agree from input to output. ${FLATTEN}`,
  shape: () => 'forward(x) must return a float tensor of shape (B, number of classes): the logits, no softmax, no other values.',
  'non-finite': () => 'Remove operations that can produce NaN or inf (division, log, sqrt of raw activations); use standard layers with batch normalization.',
  unchanged: () => 'Change the program so that the error goes away; returning it as it was does not fix it.',
  'too-large': (limits) => `Stay under ${limits.maxParams.toLocaleString('en-US')} parameters: fewer channels (e.g. 32–128), fewer layers, and no large linear layers.`,
};

/** What went wrong, where, and what to write instead. */
export function diagnose(failed: FailedProgram, limits: RepairLimits): Diagnosis {
  const { failureClass, message } = failed;
  const line = failureLine(message);
  const lines = failed.code.split('\n');
  const lineText = line !== null && line >= 1 && line <= lines.length ? lines[line - 1]!.trim() : '';
  const problem = withoutLocation(message).trim();
  let advice = (DEFAULT_ADVICE[failureClass] ?? (() => 'Fix the error.'))(limits);
  for (const rule of RULES[failureClass] ?? []) {
    const match = rule.test.exec(problem);
    if (match) {
      advice = rule.advice(match, limits);
      break;
    }
  }
  return { title: TITLES[failureClass] ?? failureClass, line: lineText ? line : null, lineText, problem, advice };
}

/** The values a repair template (prompts/repair-*.md) may use. */
export function repairValues(failed: FailedProgram, diagnosis: Diagnosis, task: Record<string, string>): Record<string, string> {
  return {
    ...task,
    failureTitle: diagnosis.title,
    problem: diagnosis.problem,
    located: diagnosis.line !== null ? 'yes' : '',
    lineNumber: diagnosis.line === null ? '' : String(diagnosis.line),
    lineText: diagnosis.lineText,
    advice: diagnosis.advice,
    hasCode: failed.code.trim() ? 'yes' : '',
    code: failed.code.trimEnd(),
  };
}

export function renderRepair(templateText: string, failed: FailedProgram, limits: RepairLimits, task: Record<string, string>): string {
  return renderTemplate(templateText, repairValues(failed, diagnose(failed, limits), task));
}

/** A repair that hands back the program it was given fixed nothing: say so instead of validating it again. */
export function unchangedAsFailure(extraction: Extraction, previous: string | null): Extraction {
  if (!extraction.ok || previous === null || extraction.code.trim() !== previous.trim()) return extraction;
  return { ok: false, failureClass: 'unchanged', message: 'the repair returned the program unchanged' };
}
