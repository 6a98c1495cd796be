/** Fitting a program to the prefilled header: seeds in LEMUR's layout, what cannot fit, fuzzed input. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fitToHeader } from '../../src/core/header-fit';

const reply = (name: string) => readFileSync(`prompts/${name}.reply.md`, 'utf8').replace(/^```python\n/, '');
const V3 = reply('design-v3');
const V2 = reply('design-v2');
const SEED = readFileSync('test/fixtures/lemur-wheel/ab/nn/nn/TinyNet.py', 'utf8');

describe('fitToHeader', () => {
  test('a program that already continues the header is kept as it is', () => {
    const code = `${V3}        self.fc = nn.Linear(in_channels, num_classes)\n\n    def forward(self, x):\n        return self.fc(x.mean((2, 3)))\n`;
    assert.deepEqual(fitToHeader(code, V3), { ok: true, code, rewritten: false });
  });

  test("a LEMUR seed continues design-v3's header: its layers, then forward; its own training methods give way to the header's", () => {
    const fit = fitToHeader(SEED, V3);
    assert.ok(fit.ok, JSON.stringify(fit));
    assert.ok(fit.code.startsWith(V3));
    const written = fit.code.slice(V3.length);
    assert.equal(
      written,
      '        self.features = nn.Sequential(nn.Conv2d(in_shape[1], 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))\n' +
        '        self.head = nn.Linear(16, out_shape[0])\n\n' +
        '    def forward(self, x):\n        return self.head(torch.flatten(self.features(x), 1))\n',
    );
    assert.doesNotMatch(written, /super\(\)|self\.device = device|def train_setup|def learn/);
  });

  test("design-v2's header defines no training methods, so the seed's own follow forward", () => {
    const fit = fitToHeader(SEED, V2);
    assert.ok(fit.ok);
    assert.match(fit.code.slice(V2.length), /def forward[\s\S]*def train_setup[\s\S]*def learn/);
    const again = fitToHeader(fit.code, V2);
    assert.ok(again.ok && again.code === fit.code && !again.rewritten, 'fitting is idempotent');
  });

  test("helper blocks, constants and the imports they need follow the class, in their order; what the header defines is the header's", () => {
    const lemur = `import torch\nimport torch.nn as nn\nimport torch.optim as optim\nimport math\n\nWIDTH = 8\n\n\nclass Block(nn.Module):\n    def forward(self, x):\n        return x * math.pi\n\n\n${SEED.slice(SEED.indexOf('def supported_hyperparameters')).replace('nn.ReLU()', 'Block()')}`;
    const fit = fitToHeader(lemur, V3);
    assert.ok(fit.ok, JSON.stringify(fit));
    const after = fit.code.slice(fit.code.indexOf('\n\n\n', V3.length));
    assert.match(fit.code.slice(V3.length), /^ {8}self\.features = nn\.Sequential\(nn\.Conv2d\(in_shape\[1\], 16, 3, padding=1\), Block\(\)/);
    assert.equal(after, '\n\n\nimport math\n\n\nWIDTH = 8\n\n\nclass Block(nn.Module):\n    def forward(self, x):\n        return x * math.pi\n', 'optim, used only by the replaced train_setup, is dropped');
    assert.doesNotMatch(fit.code.slice(V3.length), /supported_hyperparameters|def train_setup/);
  });

  test('equivalent imports fit; another signature, indentation or class head do not', () => {
    const fromImport = SEED.replace('import torch.nn as nn', 'from torch import nn');
    assert.ok(fitToHeader(fromImport, V3).ok);
    const optimOnlyInTraining = SEED.replace('import torch\n', 'import torch\nimport torch.optim as optim\n').replace('torch.optim.SGD', 'optim.SGD');
    const v3 = fitToHeader(optimOnlyInTraining, V3);
    assert.ok(v3.ok && !v3.code.includes('import torch.optim'), 'used only by the training methods the header replaces');
    const v2 = fitToHeader(optimOnlyInTraining, V2);
    assert.ok(v2.ok && v2.code.endsWith('\n\n\nimport torch.optim as optim\n'), "design-v2 keeps the seed's own training methods, which need it");
    const cases: Array<[string, RegExp]> = [
      [SEED.replace('prm, device)', 'prm, device, extra=1)'), /other parameters/],
      [SEED.replace(/^ {4}/gm, '  '), /indented differently/],
      [SEED.replace('class Net(nn.Module)', 'class Net(torch.nn.Module)'), /declared as/],
      [SEED.replace('import torch\n', 'from torch import *\n'), /an import the header cannot hold/],
      ['print(1)\n', /no class Net/],
    ];
    for (const [code, reason] of cases) {
      const fit = fitToHeader(code, V3);
      assert.ok(!fit.ok, code);
      assert.match(fit.reason, reason);
    }
  });

  test('fuzz: any text gives a verdict, never an exception, and a fit always starts with the header', () => {
    const lines = fc.constantFrom(...SEED.split('\n'), '', '    ', 'x = (', ')', '@decorator', '        pass', 'def f():', '\t\tq', 'class Net(nn.Module):');
    fc.assert(
      fc.property(fc.array(fc.oneof(lines, fc.string()), { maxLength: 40 }), (parts) => {
        const fit = fitToHeader(parts.join('\n'), V3);
        if (fit.ok) assert.ok(fit.code.startsWith(V3));
        else assert.equal(typeof fit.reason, 'string');
      }),
      { numRuns: 500 },
    );
  });
});
