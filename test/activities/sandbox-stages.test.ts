/**
 * validateCandidate / trainCandidate against a real Postgres (DATABASE_URL) and the real
 * runner, inside Temporal's MockActivityEnvironment (heartbeats, cancellation).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { buildConfig } from '../../src/core/config';
import type { TrainResult, ValidateResult } from '../../src/core/stages';
import { createTrainActivities, createValidateActivities } from '../../src/activities/sandbox-stages';
import { SandboxInfraError } from '../../src/sandbox/errors';
import { runSandbox } from '../../src/sandbox/runner';
import { candidateRecord, insertCandidate, updateCandidate } from '../../src/db/candidates';
import { insertRun, startCycle } from '../../src/db/runs';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { GOOD_NET, CHATTY_NUL, FORGERIES, SHAPE_BUG, SMALL, forging } from '../sandbox/helpers';

const enabled = Boolean(process.env.DATABASE_URL);

describe('sandbox activities', { skip: enabled ? false : 'DATABASE_URL is not set' }, () => {
  let db: TestDatabase;
  let nextIndex = 0;

  before(async () => {
    db = await createTestDatabase();
    const config = buildConfig('demo', SMALL);
    await insertRun(db.pool, 'run-1', config);
    await startCycle(db.pool, 'run-1', 1, 'm');
  });
  after(async () => {
    await db?.drop();
  });

  async function candidate(code: string | null, status = 'sampled'): Promise<number> {
    return insertCandidate(db.pool, { runId: 'run-1', cycle: 1, sampleIndex: nextIndex++, model: 'm' }, { code, status });
  }

  function counting() {
    const calls = { count: 0 };
    const runner: typeof runSandbox = (request, options) => {
      calls.count += 1;
      return runSandbox(request, options);
    };
    return { calls, runner };
  }

  test('validate then train a good candidate; results stored, heartbeats sent, retries idempotent', async () => {
    const id = await candidate(GOOD_NET);
    const { calls, runner } = counting();
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    const { validateCandidate } = createValidateActivities({ pool: db.pool, runner });
    const result = await env.run(validateCandidate, { candidateId: id });
    assert.deepEqual(result, { candidateId: id, valid: true, failureClass: null });
    assert.ok(beats.length >= 2, 'progress heartbeats');
    const row = await candidateRecord(db.pool, id);
    assert.equal(row.status, 'valid');
    assert.equal(row.valid, true);
    assert.match(row.structural_hash!, /^[0-9a-f]{64}$/);
    assert.equal(row.graph_ir.method, 'fx');
    assert.ok(row.params! > 0 && row.flops! > 0);
    assert.equal(row.validation.kind, 'validate');
    assert.ok(row.timings.validate.totalS > 0);

    assert.deepEqual(await env.run(validateCandidate, { candidateId: id }), result);
    assert.equal(calls.count, 1, 'a retry returns the stored result without rerunning');

    const { trainCandidate } = createTrainActivities({ pool: db.pool, runner });
    const trained = (await new MockActivityEnvironment().run(trainCandidate, { candidateId: id })) as TrainResult;
    assert.equal(trained.failureClass, null);
    assert.ok((trained.accuracy ?? 0) > 0.2);
    const after = (await candidateRecord(db.pool, id));
    assert.equal(after.status, 'trained');
    assert.equal(after.accuracy, trained.accuracy);
    assert.equal(after.training.testSize, 256);
    assert.ok(after.timings.validate && after.timings.train, 'timings of both stages kept');

    // A late validate retry cannot move the candidate backwards.
    await updateCandidate(db.pool, id, { validation: null });
    await env.run(validateCandidate, { candidateId: id });
    assert.equal((await candidateRecord(db.pool, id)).status, 'trained');
  });

  test('an invalid candidate is stored as invalid and not trained', async () => {
    const id = await candidate(SHAPE_BUG);
    const { validateCandidate } = createValidateActivities({ pool: db.pool });
    const result = (await new MockActivityEnvironment().run(validateCandidate, { candidateId: id })) as ValidateResult;
    assert.deepEqual(result, { candidateId: id, valid: false, failureClass: 'shape' });
    const row = (await candidateRecord(db.pool, id));
    assert.equal(row.status, 'invalid');
    assert.match(row.failure_message!, /expected \(2, 10\)/);
    assert.equal(row.graph_ir, null);
    const { calls, runner } = counting();
    const { trainCandidate } = createTrainActivities({ pool: db.pool, runner });
    const trained = (await new MockActivityEnvironment().run(trainCandidate, { candidateId: id })) as TrainResult;
    assert.deepEqual(trained, { candidateId: id, accuracy: null, failureClass: 'shape' });
    assert.equal(calls.count, 0);
  });

  test('candidate output with NUL bytes is stored', async () => {
    const id = await candidate(CHATTY_NUL);
    const { validateCandidate } = createValidateActivities({ pool: db.pool });
    const result = (await new MockActivityEnvironment().run(validateCandidate, { candidateId: id })) as ValidateResult;
    assert.equal(result.failureClass, 'instantiate');
  });

  test('a candidate that forges its event channel is stored as its own classified failure', async () => {
    for (const name of ['malformed result', 'huge progress then nothing', 'lone surrogate and NUL'] as const) {
      const id = await candidate(forging(FORGERIES[name]!.lines));
      const env = new MockActivityEnvironment();
      const beats: unknown[] = [];
      env.on('heartbeat', (details: unknown) => beats.push(details));
      const { validateCandidate } = createValidateActivities({ pool: db.pool });
      const result = (await env.run(validateCandidate, { candidateId: id })) as ValidateResult;
      assert.equal(result.valid, false, name);
      assert.ok(result.failureClass, name);
      const row = (await candidateRecord(db.pool, id));
      assert.equal(row.status, 'invalid', name);
      assert.ok(row.validation.claimed.includes('params'), name);
      assert.ok(beats.every((beat) => JSON.stringify(beat).length < 256), `${name}: heartbeat details stay small`);
    }
  });

  test('extract-failed candidates are not run', async () => {
    const id = await candidate(null, 'extract-failed');
    const { calls, runner } = counting();
    const { validateCandidate } = createValidateActivities({ pool: db.pool, runner });
    const result = (await new MockActivityEnvironment().run(validateCandidate, { candidateId: id })) as ValidateResult;
    assert.equal(result.valid, false);
    assert.equal(calls.count, 0);
  });

  test('infrastructure errors fail the activity non-retryably', async () => {
    const id = await candidate(GOOD_NET);
    const broken: typeof runSandbox = async () => {
      throw new SandboxInfraError('bubblewrap (bwrap) is not installed');
    };
    const { validateCandidate } = createValidateActivities({ pool: db.pool, runner: broken });
    await assert.rejects(new MockActivityEnvironment().run(validateCandidate, { candidateId: id }), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure);
      assert.equal(error.nonRetryable, true);
      assert.match(error.message, /bubblewrap/);
      return true;
    });
    const row = (await candidateRecord(db.pool, id));
    assert.equal(row.status, 'sampled');
    assert.equal(row.validation, null);
  });
});
