import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { exactJaccard, normalizedTokens, shingles } from '../../../src/core/novelty';
import { tokenize } from '../../../src/core/novelty/tokenize';

const norm = (code: string) => normalizedTokens(code).join(' ');
const raw = (code: string) => normalizedTokens(code, { identifiers: false, numbers: false, strings: false }).join(' ');

test('comments and docstrings are stripped, string values are not', () => {
  const code = [
    '"""Module docstring."""',
    'class A:',
    "    '''Class doc'''  # trailing comment",
    '    def f(self):',
    '        r"""Raw doc""" "implicitly concatenated"',
    '        # a whole-line comment',
    "        return 'kept'",
  ].join('\n');
  assert.equal(norm(code), 'class ID : def ID ( ID ) : return STR');
  assert.equal(raw('x = "a"  # c'), 'x = "a"');
});

test('whitespace, indentation, blank lines and line continuations are ignored', () => {
  const a = 'def f(a, b):\n    return a + \\\n        b\n';
  const b = 'def   f( a,b ) :\n\n\n  return a+b';
  assert.deepEqual(normalizedTokens(a), normalizedTokens(b));
  assert.equal(norm(a), 'def ID ( ID , ID ) : return ID + ID');
});

test('identifiers become ID except keywords and PyTorch API names', () => {
  const code = [
    'import torch',
    'import torch.nn as nn',
    'import torch.nn.functional as F',
    'from torch.nn import Conv2d, BatchNorm2d as BN',
    'import numpy as np',
    'def forward(self, x):',
    '    y = F.relu(self.conv1(x)) + torch.nn.functional.gelu(x)',
    '    z = Conv2d(3, 8, 3)(x) if x is not None else BN(8)',
    '    return nn.Flatten()(np.zeros(3)).view(x.size(0), -1)',
  ].join('\n');
  assert.equal(
    norm(code),
    [
      'import torch',
      'import torch . nn as nn',
      'import torch . nn . functional as F',
      'from torch . nn import Conv2d , BatchNorm2d as BN',
      'import ID as ID',
      'def ID ( ID , ID ) :',
      'ID = F . relu ( ID . ID ( ID ) ) + torch . nn . functional . gelu ( ID )',
      'ID = Conv2d ( NUM , NUM , NUM ) ( ID ) if ID is not None else BN ( NUM )',
      'return nn . Flatten ( ) ( ID . ID ( NUM ) ) . view ( ID . size ( NUM ) , - NUM )',
    ].join(' '),
  );
});

test('numbers and strings of every Python form normalize to NUM and STR', () => {
  const numbers = ['1', '1_000', '1.5', '.5', '5.', '1e-3', '2.5E+10', '0x1F', '0o17', '0b1010', '3j', '1.5j'];
  for (const n of numbers) assert.equal(norm(`x = ${n}`), 'ID = NUM', n);
  const strings = ["''", '""', "'a\\'b'", '"a\\"b"', "'''multi\nline'''", '"""x"""', "f'{a}'", "rb'\\x00'", "BR''", "u'x'"];
  for (const s of strings) assert.equal(norm(`x = ${s}`), 'ID = STR', s);
});

test('each normalization switch can be turned off', () => {
  const code = 'speed = 3.5 * "km"';
  assert.equal(normalizedTokens(code, { identifiers: false, numbers: true, strings: true }).join(' '), 'speed = NUM * STR');
  assert.equal(normalizedTokens(code, { identifiers: true, numbers: false, strings: true }).join(' '), 'ID = 3.5 * STR');
  assert.equal(normalizedTokens(code, { identifiers: true, numbers: true, strings: false }).join(' '), 'ID = NUM * "km"');
});

test('the tokenizer is total and loses no non-blank character', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (source) => {
      const tokens = tokenize(source);
      const kept = tokens.filter((t) => t.kind !== 'newline').map((t) => t.text).join('');
      const strip = (s: string) => s.replace(/[\s\\]/g, '');
      assert.equal(strip(kept), strip(source));
    }),
    { seed: 7, numRuns: 300 },
  );
});

test('the same network renamed, re-commented and with other constants normalizes identically', () => {
  const read = (name: string) => readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'novelty', name), 'utf8');
  const a = shingles(normalizedTokens(read('alexnet_small.py')), 7);
  const b = shingles(normalizedTokens(read('alexnet_renamed.py')), 7);
  const c = shingles(normalizedTokens(read('resnet_tiny.py')), 7);
  assert.equal(exactJaccard(a, b), 1);
  assert.ok(exactJaccard(a, c) < 0.5, `different networks should differ, got ${exactJaccard(a, c)}`);
});
