import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { extractCode, fencedBlocks } from '../../src/core/extract';
import { fencePython } from '../../src/core/prompts';

const RUNS = { numRuns: 300 };
const FENCE_LIKE = /^ {0,3}(```|~~~)/;

/** Any single line that is not a fence line. */
const anyLine = fc
  .string({ unit: 'grapheme-ascii', maxLength: 40 })
  .filter((line) => !/[\r\n]/.test(line) && !FENCE_LIKE.test(line));

/** A program defining class Net, with arbitrary (indented) body lines. */
const program = fc
  .tuple(fc.array(anyLine.map((l) => `    ${l}`), { maxLength: 6 }), fc.array(anyLine.map((l) => `        ${l}`), { maxLength: 6 }))
  .map(([helpers, body]) =>
    ['import torch', 'import torch.nn as nn', '', 'def helper():', ...helpers, '    return 1', '', 'class Net(nn.Module):', '    def forward(self, x):', ...body, '        return x'].join('\n'),
  );

/** Prose lines: never a fence and never the start of Python code. */
const proseWords = fc.constantFrom('Here', 'is', 'the', 'model', 'It', 'uses', 'a', 'residual', 'block', 'Sure', 'This', 'design', 'should', 'train', 'fast');
const prose = fc.array(fc.array(proseWords, { minLength: 1, maxLength: 8 }).map((w) => `${w.join(' ')}.`), { maxLength: 4 }).map((lines) => lines.join('\n'));

/** A block that must never be chosen over the program: snippets in other languages or without class Net. */
const decoy = fc.oneof(
  fc.tuple(fc.constantFrom('bash', 'json', 'text', 'yaml', 'shell'), fc.array(anyLine, { maxLength: 4 })).map(([lang, lines]) => `\`\`\`${lang}\n${lines.join('\n')}\n\`\`\``),
  fc.array(anyLine, { maxLength: 4 }).map((lines) => `\`\`\`python\nimport torch\n${lines.map((l) => `# ${l}`).join('\n')}\n\`\`\``),
);

const finishReason = fc.constantFrom('stop', 'length', null);
const expected = (code: string) => `${code.replace(/\s+$/, '')}\n`;

describe('extractCode (properties)', () => {
  test('a fenced program is recovered exactly from any surrounding prose', () => {
    fc.assert(
      fc.property(prose, program, prose, finishReason, (before, code, after, reason) => {
        const result = extractCode(`${before}\n\`\`\`python\n${code}\n\`\`\`\n${after}`, reason);
        assert.deepEqual(result, { ok: true, code: expected(code), source: 'fence', language: 'python' });
      }),
      RUNS,
    );
  });

  test('the block defining class Net wins over decoys in any order', () => {
    fc.assert(
      fc.property(program, fc.array(decoy, { maxLength: 4 }), fc.nat(), prose, (code, decoys, at, text) => {
        const parts = [...decoys];
        parts.splice(at % (decoys.length + 1), 0, `\`\`\`python\n${code}\n\`\`\``);
        const result = extractCode(parts.join(`\n${text}\n`), 'stop');
        assert.equal(result.ok && result.code, expected(code));
      }),
      RUNS,
    );
  });

  test('a missing closing fence is accepted unless the token limit cut it off', () => {
    fc.assert(
      fc.property(prose, program, (before, code) => {
        const text = `${before}\n\`\`\`python\n${code}\n`;
        const stopped = extractCode(text, 'stop');
        assert.equal(stopped.ok && stopped.source, 'unclosed-fence');
        assert.equal(stopped.ok && stopped.code, expected(code));
        const cut = extractCode(text, 'length');
        assert.equal(!cut.ok && cut.failureClass, 'truncated');
      }),
      RUNS,
    );
  });

  test('a complete program beats a later one cut off by the token limit', () => {
    fc.assert(
      fc.property(program, program, prose, (complete, cut, text) => {
        const result = extractCode(`\`\`\`python\n${complete}\n\`\`\`\n${text}\n\`\`\`python\n${cut}`, 'length');
        assert.equal(result.ok && result.code, expected(complete));
      }),
      RUNS,
    );
  });

  test('only non-python fences and prose: no-code, or truncated at the token limit', () => {
    fc.assert(
      fc.property(fc.array(decoy.filter((d) => !d.startsWith('```python')), { minLength: 1, maxLength: 3 }), prose, (decoys, text) => {
        const completion = `${text}\n${decoys.join('\n')}`;
        const stop = extractCode(completion, 'stop');
        assert.equal(!stop.ok && stop.failureClass, 'no-code');
        const cut = extractCode(completion, 'length');
        assert.equal(!cut.ok && cut.failureClass, 'truncated');
      }),
      RUNS,
    );
  });

  test('an unfenced program between prose paragraphs is recovered', () => {
    fc.assert(
      fc.property(prose, program, prose, (before, code, after) => {
        const result = extractCode(`${before}\n${code}\n\n${after}`, 'stop');
        assert.equal(result.ok && result.source, 'unfenced');
        assert.equal(result.ok && result.code, expected(code));
      }),
      RUNS,
    );
  });

  test('never throws; extracted code is non-empty and survives a round trip through fencePython', () => {
    const chunk = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('```', '```python\n', '\n```\n', '~~~\n', 'class Net(nn.Module):\n', 'import torch\n', '\n'));
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 12 }), finishReason, (chunks, reason) => {
        const result = extractCode(chunks.join(''), reason);
        if (!result.ok) return;
        assert.notEqual(result.code.trim(), '');
        const again = extractCode(fencePython(result.code), 'stop');
        assert.equal(again.ok && again.code, result.code);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('extractCode (examples)', () => {
  test('classifies empty and prose-only completions', () => {
    assert.deepEqual(extractCode('  \n ', 'stop'), { ok: false, failureClass: 'empty-completion', message: 'the completion is empty' });
    const prose = extractCode('I would use a ResNet with three stages.', 'stop');
    assert.equal(!prose.ok && prose.failureClass, 'no-code');
  });

  test('an oddly labelled fence that defines Net is still the program', () => {
    const result = extractCode('```PyTorch\nclass Net(nn.Module):\n    pass\n```', 'stop');
    assert.deepEqual(result, { ok: true, code: 'class Net(nn.Module):\n    pass\n', source: 'fence', language: 'pytorch' });
  });

  test('indented fences (inside a list) are dedented; tildes and longer fences close correctly', () => {
    assert.equal(fencedBlocks('1. code:\n   ```python\n   x = 1\n     y = 2\n   ```')[0]!.code, 'x = 1\n  y = 2');
    assert.deepEqual(fencedBlocks('~~~py\na = "```"\n```\n~~~'), [{ language: 'py', code: 'a = "```"\n```', closed: true }]);
    assert.deepEqual(fencedBlocks('````\n```\n````'), [{ language: '', code: '```', closed: true }]);
  });

  test('without class Net the longest python block is returned (the validator classifies it)', () => {
    const result = extractCode('```python\nx = 1\n```\n```python\nimport torch\ny = torch.zeros(2)\n```', 'stop');
    assert.equal(result.ok && result.code, 'import torch\ny = torch.zeros(2)\n');
  });
});

describe('extractCode (time on adversarial input)', () => {
  // Linear extraction of 60k characters takes milliseconds; the quadratic fence regex this
  // replaced took seconds on one such line (5.4 s at 100k), so the bound can only be missed
  // by a super-linear pattern, not by a loaded machine.
  const BOUND_MS = 400;
  const LENGTH = 60_000;
  const pieces = fc.constantFrom('`', '```', '~~~', ' ', '\t', '\n', '\r', 'a', '.', '[', ']', '=', '(', ':', '#', 'class Net', 'import x', 'from a', 'def f', '    ', 'python');
  /** A short random chunk repeated to LENGTH: long runs are what backtracking feeds on. */
  const adversarial = fc
    .tuple(fc.array(pieces, { minLength: 1, maxLength: 6 }), fc.array(pieces, { maxLength: 3 }), fc.array(pieces, { maxLength: 3 }))
    .map(([unit, head, tail]) => {
      const chunk = unit.join('');
      return head.join('') + chunk.repeat(Math.ceil(LENGTH / chunk.length)) + tail.join('');
    });

  const timed = (text: string, reason: string | null) => {
    const start = performance.now();
    extractCode(text, reason);
    return performance.now() - start;
  };

  test('the known quadratic cases: one long fence line, long inner whitespace', () => {
    for (const text of [
      '```' + 'a'.repeat(100_000) + '`',
      '```python\nclass Net:\n' + ' '.repeat(100_000) + 'x\n```',
      '~~~' + ' '.repeat(100_000) + 'py' + '`',
    ]) {
      const ms = timed(text, 'stop');
      assert.ok(ms < BOUND_MS, `${ms.toFixed(0)} ms on ${JSON.stringify(text.slice(0, 20))}…`);
    }
  });

  test(`any repeated pattern of ${LENGTH} characters is extracted within ${BOUND_MS} ms`, () => {
    fc.assert(
      fc.property(adversarial, finishReason, (text, reason) => {
        const ms = timed(text, reason);
        assert.ok(ms < BOUND_MS, `${ms.toFixed(0)} ms on ${JSON.stringify(text.slice(0, 40))}…`);
      }),
      { numRuns: 150 },
    );
  });
});
