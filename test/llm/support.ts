/** Shared setup for the activity tests: a run row with a config, its cycle rows, corpus rows. */
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { buildConfig, type RunConfig } from '../../src/core/config';
import type { Queryable } from '../../src/db/pool';

export async function insertRun(db: Queryable, runId: string, overrides: unknown, cycles: number[] = [0, 1, 2]): Promise<RunConfig> {
  const config = buildConfig('demo', overrides);
  await db.query(`INSERT INTO runs (id, name, preset, config) VALUES ($1, $2, $3, $4)`, [runId, config.name, config.preset, JSON.stringify(config)]);
  for (const cycle of cycles) await db.query(`INSERT INTO cycles (run_id, cycle, model) VALUES ($1, $2, 'base')`, [runId, cycle]);
  return config;
}

export async function insertSeed(db: Queryable, name: string, code: string, accuracy: number, dataset = 'cifar10'): Promise<number> {
  const { rows } = await db.query(
    `INSERT INTO corpus (source, source_key, name, code, dataset, accuracy, licence) VALUES ('lemur', $1, $2, $3, $4, $5, 'MIT') RETURNING id`,
    [`lemur:${name}`, name, code, dataset, accuracy],
  );
  return rows[0].id;
}

export async function insertAdmitted(db: Queryable, runId: string, cycle: number, code: string, promptBody: string | null): Promise<number> {
  let promptHash: string | null = null;
  if (promptBody !== null) {
    promptHash = `hash-${runId}-${cycle}-${code.length}`;
    await db.query(`INSERT INTO prompts (hash, template, template_hash, body) VALUES ($1, 'design-v1', 'x', $2) ON CONFLICT DO NOTHING`, [promptHash, promptBody]);
  }
  const { rows } = await db.query(
    `INSERT INTO corpus (source, source_key, name, code, dataset, accuracy, run_id, cycle, prompt_hash)
     VALUES ('archloop', $1, $1, $2, 'fashion-mnist', 0.5, $3, $4, $5) RETURNING id`,
    [`${runId}/${cycle}/${code.length}`, code, runId, cycle, promptHash],
  );
  return rows[0].id;
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
