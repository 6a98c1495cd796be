/** Shared setup for the activity tests: a run row with a config, its cycle rows, corpus rows. */
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { buildConfig, type RunConfig } from '../../src/core/config';
import { insertCorpusEntry, storeCheck } from '../../src/db/corpus';
import type { Queryable } from '../../src/db/pool';
import { storePrompt } from '../../src/db/prompts';
import { insertRun as insertRunRow, startCycle } from '../../src/db/runs';

export async function insertRun(db: Queryable, runId: string, overrides: unknown, cycles: number[] = [0, 1, 2]): Promise<RunConfig> {
  const config = buildConfig('demo', overrides);
  await insertRunRow(db, runId, config);
  for (const cycle of cycles) await startCycle(db, runId, cycle, 'base');
  return config;
}

export function insertSeed(db: Queryable, name: string, code: string, accuracy: number, dataset = 'cifar10'): Promise<number> {
  return insertCorpusEntry(db, { source: 'lemur', sourceKey: `lemur:${name}`, name, code, dataset, accuracy, licence: 'MIT' });
}

/** A seed entry's verdict under a profile, as the seed check stores it. */
export function markChecked(db: Queryable, corpusId: number, profile: string, valid: boolean, failureClass: string | null = null): Promise<void> {
  return storeCheck(db, profile, { corpusId, valid, failureClass, failureMessage: null, params: null, flops: null, structuralHash: null });
}

/** A stored prompt (its hash is the key candidates and corpus rows refer to). */
export async function insertPrompt(db: Queryable, hash: string, body: string, template = 'design-v1'): Promise<void> {
  await storePrompt(db, { hash, body, template, templateHash: 'x', prefill: '' });
}

export async function insertAdmitted(db: Queryable, runId: string, cycle: number, code: string, promptBody: string | null): Promise<number> {
  let promptHash: string | null = null;
  if (promptBody !== null) {
    promptHash = `hash-${runId}-${cycle}-${code.length}`;
    await insertPrompt(db, promptHash, promptBody);
  }
  const sourceKey = `${runId}/${cycle}/${code.length}`;
  return insertCorpusEntry(db, { source: 'archloop', sourceKey, name: sourceKey, code, dataset: 'fashion-mnist', accuracy: 0.5, runId, cycle, promptHash });
}

export function activityEnv(heartbeats?: unknown[]): MockActivityEnvironment {
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 }, { logger: new DefaultLogger('ERROR') });
  if (heartbeats) env.on('heartbeat', (details) => heartbeats.push(details));
  return env;
}

/** Runs an activity function in a mock activity context, keeping its types. */
export function runActivity<I, O>(env: MockActivityEnvironment, fn: (input: I) => Promise<O>, input: I): Promise<O> {
  return env.run(fn, input) as Promise<O>;
}

export const NET = (width: number) => `import torch
import torch.nn as nn

def supported_hyperparameters():
    return {'lr', 'momentum'}

class Net(nn.Module):
    def __init__(self, in_shape, out_shape, prm, device):
        super().__init__()
        self.device = device
        self.body = nn.Sequential(nn.Conv2d(in_shape[1], ${width}, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(${width}, out_shape[0])

    def forward(self, x):
        return self.head(self.body(x))
`;
