/**
 * Determinism guard: histories recorded from real runs (test/fixtures/histories, made by
 * test/fixtures/record-histories.ts) must replay against the current workflow code.
 * A non-deterministic change to a workflow fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers/temporal';

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));

test('recorded histories exist', () => {
  assert.ok(files.length >= 3, `expected recorded histories in ${DIR}`);
});

for (const file of files) {
  test(`replays ${file}`, async () => {
    const { workflowId, history } = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  });
}
