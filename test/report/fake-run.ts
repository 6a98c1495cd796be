/**
 * A fabricated but realistic run for the report tests: three sampled cycles (1 and 2
 * finished with stored metrics, 3 still running), candidates in every lifecycle state
 * with classified failures, accuracies that improve over cycles, graph IRs in the
 * runner's index form and in fx's name form, and a corpus with seed and admitted rows.
 * The data is not what the tests check; it only has to look like a real run.
 */
import type pg from 'pg';
import { buildConfig } from '../../src/core/config';
import { computeCycleMetrics, type CandidateOutcome } from '../../src/core/metrics';
import { insertCandidate } from '../../src/db/candidates';
import { insertCorpusEntry } from '../../src/db/corpus';
import { finishCycle, insertRunRecord, startCycle } from '../../src/db/runs';

export const SEED_CORPUS = 5;
export const PER_CYCLE = 12;

/** Deterministic PRNG (mulberry32) so the fixture is the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FakeCandidate {
  cycle: number;
  sampleIndex: number;
  status: string;
  valid: boolean | null;
  novel: boolean | null;
  admitted: boolean;
  failureClass: string | null;
  accuracy: number | null;
  code: string | null;
  graphIr: unknown;
  params: number | null;
  flops: number | null;
}

function netCode(channels: number, blocks: number): string {
  return `import torch, torch.nn as nn

def supported_hyperparameters():
    return {'lr', 'momentum'}

class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        layers, c = [], in_shape[1]
        for _ in range(${blocks}):
            layers += [nn.Conv2d(c, ${channels}, 3, padding=1), nn.BatchNorm2d(${channels}), nn.ReLU(), nn.MaxPool2d(2)]
            c = ${channels}
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * (in_shape[2] // 2 ** ${blocks}) ** 2, out_shape[0])
        self.device = device

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))

    def train_setup(self, prm):
        self.criteria = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.parameters(), lr=prm['lr'], momentum=prm['momentum'])

    def learn(self, train_data):
        for inputs, labels in train_data:
            self.optimizer.zero_grad()
            self.criteria(self(inputs), labels).backward()
            self.optimizer.step()
`;
}

type IrNode = { op: string; target: string; attrs: Record<string, unknown>; inputs: number[]; shape: number[] | null; dtype: string | null };

/** One node of the runner's graph IR (GraphIR in src/core/sandbox.ts). */
export const node = (op: string, target: string, inputs: number[], shape: number[] | null = null, attrs: Record<string, unknown> = {}): IrNode => ({
  op,
  target,
  attrs,
  inputs,
  shape,
  dtype: shape ? 'float32' : null,
});

/** The runner's IR (GraphIR in src/core/sandbox.ts): nodes with index references and a separate output list. */
function runnerIr(channels: number, blocks: number): unknown {
  const nodes: IrNode[] = [node('placeholder', 'x', [], [1, 1, 28, 28])];
  let size = 28;
  for (let b = 0; b < blocks; b += 1) {
    nodes.push(node('call_module', 'Conv2d', [nodes.length - 1], [1, channels, size, size], { out_channels: channels, kernel_size: [3, 3] }));
    nodes.push(node('call_module', 'BatchNorm2d', [nodes.length - 1], [1, channels, size, size], { num_features: channels }));
    nodes.push(node('call_function', 'relu', [nodes.length - 1], [1, channels, size, size]));
    size = Math.floor(size / 2);
    nodes.push(node('call_module', 'MaxPool2d', [nodes.length - 1], [1, channels, size, size], { kernel_size: 2 }));
  }
  nodes.push(node('call_function', 'flatten', [nodes.length - 1], [1, channels * size * size]));
  nodes.push(node('call_module', 'Linear', [nodes.length - 1], [1, 10], { out_features: 10 }));
  return { method: 'fx', nodes, output: [nodes.length - 1] };
}

/** A residual network: a node with two inputs (the add joins the branch back). */
function residualIr(): unknown {
  return {
    method: 'fx',
    nodes: [
      node('placeholder', 'x', [], [1, 1, 28, 28]),
      node('call_module', 'Conv2d', [0], [1, 32, 28, 28]),
      node('call_module', 'Conv2d', [1], [1, 32, 28, 28]),
      node('call_function', 'add', [1, 2], [1, 32, 28, 28]),
      node('call_module', 'AdaptiveAvgPool2d', [3], [1, 32, 1, 1]),
      node('call_function', 'flatten', [4], [1, 32], { start_dim: 1 }),
      node('call_module', 'Linear', [5], [1, 10]),
    ],
    output: [6],
  };
}

const INVALID_CLASSES = ['syntax', 'contract', 'shape', 'instantiate', 'import'];

/** Candidates of one cycle; later cycles are more often valid and more accurate. */
export function fakeCandidates(cycle: number): FakeCandidate[] {
  const random = prng(cycle * 7919);
  const validShare = 0.3 + 0.2 * cycle;
  return Array.from({ length: PER_CYCLE }, (_, sampleIndex): FakeCandidate => {
    const base = { cycle, sampleIndex, novel: null, admitted: false, accuracy: null, graphIr: null, params: null, flops: null };
    if (sampleIndex === PER_CYCLE - 1) return { ...base, status: 'extract-failed', valid: null, failureClass: 'no-code', code: null };
    const channels = 8 * (1 + (sampleIndex % 4));
    const blocks = 1 + (sampleIndex % 3);
    const code = netCode(channels, blocks);
    if (random() > validShare) {
      return { ...base, status: 'invalid', valid: false, failureClass: INVALID_CLASSES[sampleIndex % INVALID_CLASSES.length]!, code };
    }
    const valid = {
      ...base,
      valid: true,
      code,
      graphIr: runnerIr(channels, blocks),
      params: 1000 * channels * channels * blocks + 7850,
      flops: 2.1e5 * channels * blocks,
    };
    if (random() < 0.12) return { ...valid, status: 'train-failed', failureClass: random() < 0.5 ? 'timeout' : 'nan-loss' };
    const accuracy = Math.min(0.92, 0.08 + 0.17 * cycle + 0.35 * random());
    if (accuracy < 0.12) return { ...valid, status: 'trained', accuracy, failureClass: 'low-accuracy' };
    const novel = random() > 0.2;
    if (!novel) return { ...valid, status: 'duplicate', accuracy, novel, failureClass: 'duplicate' };
    const admitted = accuracy >= 0.4;
    return { ...valid, status: admitted ? 'admitted' : 'novel', accuracy, novel, admitted, failureClass: null };
  });
}

/** The cycle 2 fx-form candidate always trains well, so it is among the top architectures. */
function pinned(candidates: FakeCandidate[]): FakeCandidate[] {
  return candidates.map((c) =>
    c.cycle === 2 && c.sampleIndex === 0
      ? { ...c, status: 'admitted', valid: true, failureClass: null, accuracy: 0.905, novel: true, admitted: true, graphIr: residualIr(), params: 19_146, flops: 1.6e7 }
      : c,
  );
}

export interface FakeRun {
  runId: string;
  candidates: FakeCandidate[];
  /** Cycles whose metrics are stored (the others are still running). */
  finishedCycles: number[];
}

export async function seedFakeRun(pool: pg.Pool, runId = 'report-test/run-1'): Promise<FakeRun> {
  const config = buildConfig('demo');
  await insertRunRecord(pool, { id: runId, name: 'report test run', preset: 'demo', config, status: 'running', createdAt: new Date('2026-01-10T08:00:00Z') });
  for (let i = 0; i < SEED_CORPUS; i += 1) {
    await insertCorpusEntry(pool, { source: 'lemur', sourceKey: `lemur:seed-${i}`, name: `seed-${i}`, code: 'pass', dataset: 'cifar10', accuracy: 0.5 });
  }
  await startCycle(pool, runId, 0, 'smollm2-135m-instruct');
  await finishCycle(pool, runId, 0, null);
  const candidates = pinned([1, 2, 3].flatMap(fakeCandidates));
  const finishedCycles = [1, 2];
  let corpusSize = SEED_CORPUS;
  for (const cycle of [1, 2, 3]) {
    await startCycle(pool, runId, cycle, `adapter-c${cycle - 1}`);
    const own = candidates.filter((c) => c.cycle === cycle);
    for (const c of own) {
      const id = await insertCandidate(
        pool,
        { runId, cycle, sampleIndex: c.sampleIndex, model: 'm' },
        {
          code: c.code,
          status: c.status,
          valid: c.valid,
          novel: c.novel,
          admitted: c.admitted,
          failure_class: c.failureClass,
          accuracy: c.accuracy,
          graph_ir: c.graphIr,
          params: c.params,
          flops: c.flops,
        },
      );
      if (c.admitted) {
        await insertCorpusEntry(pool, {
          source: 'archloop',
          sourceKey: `${runId}/${cycle}/${c.sampleIndex}`,
          code: c.code ?? '',
          accuracy: c.accuracy,
          runId,
          cycle,
          candidateId: id,
        });
      }
    }
    corpusSize += own.filter((c) => c.admitted).length;
    if (finishedCycles.includes(cycle)) {
      const outcomes: CandidateOutcome[] = own.map((c) => ({ valid: c.valid === true, accuracy: c.accuracy, failureClass: c.failureClass, admitted: c.admitted }));
      await finishCycle(pool, runId, cycle, computeCycleMetrics(cycle, outcomes, corpusSize));
    }
  }
  return { runId, candidates, finishedCycles };
}
