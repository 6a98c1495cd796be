/** Shared bits of the sandbox tests: programs, a private dataset cache, a small config. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildConfig, type RunConfig } from '../../src/core/config';

// One dataset cache for the whole test process (the runner reads ARCHLOOP_DATASETS).
process.env.ARCHLOOP_DATASETS ??= mkdtempSync(path.join(tmpdir(), 'archloop-sbx-datasets-'));

export const SMALL: Pick<RunConfig, 'dataset' | 'contract' | 'training'> = (() => {
  const config = buildConfig('demo', {
    dataset: { name: 'synthetic', syntheticTrainSize: 1024, syntheticTestSize: 256 },
    contract: { validateTimeoutS: 60 },
    training: { batchSize: 16, threads: 1, timeLimitS: 60, maxTrainImages: 0 },
  });
  return { dataset: config.dataset, contract: config.contract, training: config.training };
})();

export const GOOD_NET = `
import torch
import torch.nn as nn
import torch.nn.functional as F

def supported_hyperparameters():
    return {'lr', 'momentum'}

class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.conv1 = nn.Conv2d(in_shape[1], 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16, out_shape[0])

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def train_setup(self, prm):
        self.criteria = (nn.CrossEntropyLoss().to(self.device),)
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'], momentum=prm['momentum'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            loss = self.criteria[0](self(inputs), labels)
            loss.backward()
            self.optimizer.step()
`;

export const SHAPE_BUG = GOOD_NET.replace('return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))', 'return F.adaptive_avg_pool2d(x, 1).flatten(1)');

export const SLEEPER = GOOD_NET.replace('self.device = device', 'self.device = device\n        import time\n        time.sleep(10**6)');

export const CHATTY_NUL = GOOD_NET.replace('self.device = device', "self.device = device\n        print('nul\\x00byte')\n        raise ValueError('bad\\x00value')");

/**
 * A program that writes `lines` to the runner's event channel itself (the fd number is in
 * its argv) from __init__, then exits: a forged report.
 */
export function forging(lines: string[], exit = true): string {
  const payload = JSON.stringify(lines.map((line) => `${line}\n`).join(''));
  return GOOD_NET.replace(
    'self.device = device',
    [
      'self.device = device',
      '        import os, json',
      "        argv = open('/proc/self/cmdline', 'rb').read().split(b'\\0')",
      "        fd = int(argv[argv.index(b'--events-fd') + 1])",
      `        os.write(fd, json.loads(${JSON.stringify(payload)}).encode('utf-8', 'surrogatepass'))`,
      ...(exit ? ['        os._exit(0)'] : []),
    ].join('\n'),
  );
}

const ok = { ok: true, warnings: [], timings: {} };
/** Forged event lines, each of which must end as the candidate's classified failure. */
export const FORGERIES: Record<string, { kind: 'validate' | 'train'; lines: string[] }> = {
  'malformed result': { kind: 'validate', lines: ['{"event":"result","result":{"ok":tru'] },
  'negative params': { kind: 'validate', lines: [JSON.stringify({ event: 'result', result: { ...ok, outputShape: [2, 10], params: -5, flops: 1 } })] },
  'params over the limit': { kind: 'validate', lines: [JSON.stringify({ event: 'result', result: { ...ok, outputShape: [2, 10], params: 1e12, flops: 1 } })] },
  'lone surrogate and NUL': {
    kind: 'validate',
    lines: ['{"event":"result","result":{"ok":false,"failure":{"class":"forward","stage":"forward","message":"\\ud800 and \\u0000"}}}'],
  },
  'unknown failure class': { kind: 'validate', lines: [JSON.stringify({ event: 'result', result: { ok: false, failure: { class: 'pwned', stage: 'x', message: 'm' } } })] },
  'huge progress then nothing': { kind: 'validate', lines: [JSON.stringify({ event: 'progress', stage: 'x'.repeat(3_000_000), elapsedS: 1 })] },
  'bad base64 predictions': { kind: 'train', lines: [JSON.stringify({ event: 'result', result: { ...ok, predictionsB64: '!!!not base64' } })] },
  'NaN flops': { kind: 'validate', lines: ['{"event":"result","result":{"ok":true,"outputShape":[2,10],"params":1,"flops":NaN}}'] },
};
