/**
 * Durability: SIGKILL the worker process in the middle of a long activity, start a new
 * one, and the run completes with every candidate row present exactly once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { startRun } from '../../src/client/temporal';
import type { RunOutcome } from '../../src/workflows/designRun';
import { candidateRecords } from '../../src/db/candidates';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { mockValid } from '../helpers/mock-activities';
import { smallConfig, testClient, uniqueRunId } from '../helpers/temporal';

let db: TestDatabase;
let client: Client;
const children: ChildProcess[] = [];
before(async () => {
  db = await createTestDatabase();
  client = await testClient();
});
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await client.connection.close();
  await db.drop();
});

function startWorker(events: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'fixtures', 'mock-worker.ts')], {
    env: { ...process.env, DATABASE_URL: db.url, MOCK_WORKER_EVENTS: events, MOCK_TRAIN_MS: '3000' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

async function waitForLine(file: string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file) && pattern.test(readFileSync(file, 'utf8'))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${pattern} in ${file}`);
}

test('a run survives SIGKILL of its worker mid-activity; every candidate row exists exactly once', async () => {
  const events = path.join(mkdtempSync(path.join(os.tmpdir(), 'archloop-durability-')), 'events');
  const config = smallConfig({ cycles: 2, orchestration: { heartbeatTimeoutS: 3, maxAttempts: 5 } });
  const runId = uniqueRunId('durability');

  const first = startWorker(events);
  await waitForLine(events, /ready/);
  await startRun(client, config, runId);
  await waitForLine(events, /started \d+/);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));

  startWorker(events);
  const outcome = (await client.workflow.getHandle(runId).result()) as RunOutcome;
  assert.equal(outcome.status, 'completed');
  assert.deepEqual(outcome.completed.map((c) => c.cycle), [1, 2]);

  const rows = await candidateRecords(db.pool, { runId });
  const perSample = new Map<string, number>();
  for (const row of rows) perSample.set(`${row.cycle}/${row.sample_index}`, (perSample.get(`${row.cycle}/${row.sample_index}`) ?? 0) + 1);
  // One row per sample, two for a sample that needed a repair: nothing lost, nothing twice.
  const expected = [1, 2].flatMap((cycle) => [0, 1, 2, 3, 4, 5].map((index) => [`${cycle}/${index}`, mockValid(index) ? 1 : 2] as const));
  assert.deepEqual([...perSample], expected);
  const untrained = rows.filter((row) => row.valid && row.accuracy === null);
  assert.equal(untrained.length, 0, 'every valid candidate was trained despite the kill');
  // The killed activity really was retried on the new worker.
  const starts = readFileSync(events, 'utf8').match(/started \d+/g)!;
  assert.ok(new Set(starts).size < starts.length, 'some training activity started twice (before and after the kill)');
});
