/**
 * Kill everything, start again, and the same run continues: a real run (embedded LLM,
 * sandbox, real activities) on its own Postgres and Temporal dev server; in the middle of
 * a cycle the worker, Temporal and Postgres are all SIGKILLed; then `archloop services up`
 * and a new worker finish the run with every candidate row present exactly once.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { buildConfig } from '../../src/core/config';
import { candidateRecords, type CandidateRecord } from '../../src/db/candidates';
import { REPO_ROOT } from '../../src/env';
import { embeddedModelName } from '../../src/services/llm';
import { postgresClusterDir } from '../../src/services/postgres';

const BIN = path.join(REPO_ROOT, 'bin', 'archloop');
const llmUrl = process.env.ARCHLOOP_LLM_URL;
const home = mkdtempSync(path.join(os.tmpdir(), 'archloop-resume-'));
const env = { ...process.env, ARCHLOOP_HOME: home, ARCHLOOP_LLM_URL: llmUrl } as NodeJS.ProcessEnv;
delete env.DATABASE_URL;
delete env.TEMPORAL_ADDRESS;
const workers: ChildProcess[] = [];

function archloop(args: string[]): string {
  const result = spawnSync(BIN, args, { env, encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) throw new Error(`archloop ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function startWorker(): ChildProcess {
  const child = spawn(BIN, ['worker', '--queue', 'all'], { env, stdio: 'ignore', detached: true });
  workers.push(child);
  return child;
}

function services(): { postgres: { url: string; pid: number }; temporal: { address: string; pid: number } } {
  return JSON.parse(readFileSync(path.join(home, 'services.json'), 'utf8'));
}

/** SIGKILL a process and its descendants (a power cut, as far as they can tell). */
function killTree(pid: number): void {
  const children = (p: number): number[] =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === p;
        } catch {
          return false;
        }
      })
      .map(Number);
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]!));
  for (const p of all.reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Candidate rows of the cluster at `url` (of one run, or all). */
async function candidates(url: string, runId?: string): Promise<CandidateRecord[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await candidateRecords(client, { runId });
  } finally {
    await client.end();
  }
}

after(() => {
  for (const worker of workers) if (worker.exitCode === null && worker.pid) killTree(worker.pid);
  spawnSync(BIN, ['services', 'down'], { env, timeout: 120_000 });
  rmSync(path.dirname(postgresClusterDir(home)), { recursive: true, force: true }); // may live outside home (as root)
  rmSync(home, { recursive: true, force: true });
});

test('kill worker, Temporal and Postgres mid-cycle; services up + a worker finish the same run', { skip: llmUrl ? false : 'needs ARCHLOOP_LLM_URL', timeout: 900_000 }, async () => {
  archloop(['services', 'up', '--only', 'postgres,temporal']);
  const config = buildConfig('demo', {
    cycles: 2,
    dataset: { name: 'synthetic', syntheticTrainSize: 512, syntheticTestSize: 256 },
    training: { batchSize: 32, timeLimitS: 120, threads: 1 },
    llm: { model: embeddedModelName() },
    sampling: { samplesPerCycle: 2, samplesPerActivity: 1, maxNewTokens: 256, baselineSamples: 0 },
    lora: { enabled: false },
    orchestration: { heartbeatTimeoutS: 10 },
  });
  const configFile = path.join(home, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const worker = startWorker();
  const runId = 'resume-test-run';
  archloop(['run', '--preset', 'demo', '--config', configFile, '--id', runId]);

  const before = services();
  await until('the first candidate row', async () => (await candidates(before.postgres.url)).length > 0, 300_000);
  killTree(worker.pid!);
  killTree(before.temporal.pid);
  killTree(before.postgres.pid);

  archloop(['services', 'up', '--only', 'postgres,temporal']);
  const again = services();
  startWorker();
  const connection = await Connection.connect({ address: again.temporal.address });
  try {
    const client = new Client({ connection });
    const outcome = await client.workflow.getHandle(runId).result();
    assert.equal(outcome.status, 'completed');
    assert.deepEqual(outcome.completed.map((c: { cycle: number }) => c.cycle), [1, 2]);
  } finally {
    await connection.close();
  }
  // First attempts (repairs are further rows of the same sample index, attempt 1, 2, …).
  const firstAttempts = (await candidates(again.postgres.url, runId)).filter((row) => row.attempt === 0).map((row) => `${row.cycle}/${row.sample_index}`);
  const once = firstAttempts.filter((key) => firstAttempts.indexOf(key) === firstAttempts.lastIndexOf(key));
  assert.equal(once.length, 4, 'two cycles × two candidates, each exactly once');
  assert.match(archloop(['status', runId]), /Total train prompts[\s\S]*\n\s*2\s/);
});
