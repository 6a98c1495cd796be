/**
 * A run started with the Temporal CLI binary itself (no archloop code on the client side)
 * is executed by archloop's worker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { temporalBinary } from '../../src/services/temporal';
import type { RunOutcome } from '../../src/workflows/designRun';
import { candidateRecords } from '../../src/db/candidates';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { smallConfig, temporalAddressForTests, testClient, uniqueRunId, withMockWorkers } from '../helpers/temporal';

const run = promisify(execFile);
let db: TestDatabase;
let client: Client;
before(async () => {
  db = await createTestDatabase();
  client = await testClient();
});
after(async () => {
  await client.connection.close();
  await db.drop();
});

test('`temporal workflow start --type designRun` starts a run that the worker executes', async () => {
  const runId = uniqueRunId('cli-start');
  const input = JSON.stringify({ config: smallConfig({ cycles: 1 }) });
  const outcome = await withMockWorkers(db.pool, async () => {
    const { stdout } = await run(temporalBinary(), [
      'workflow', 'start',
      '--address', temporalAddressForTests(),
      '--type', 'designRun',
      '--task-queue', 'archloop-control',
      '--workflow-id', runId,
      '--input', input,
    ]);
    assert.match(stdout, new RegExp(runId));
    return client.workflow.getHandle(runId).result() as Promise<RunOutcome>;
  });
  assert.equal(outcome.status, 'completed');
  assert.deepEqual(outcome.completed.map((c) => c.cycle), [1]);
  const rows = await candidateRecords(db.pool, { runId });
  assert.equal(rows.filter((row) => row.attempt === 0).length, 6);
});
