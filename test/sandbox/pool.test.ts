/** The warm pool: its sizing (pure) and its client against the real server and sandbox. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolSizing, SandboxPool, sizingFromEnv, type PoolSizing } from '../../src/sandbox/pool';
import { SandboxInfraError } from '../../src/sandbox/errors';
import { buildRequest, settingsFromEnv } from '../../src/sandbox/request';
import { GOOD_NET, SHAPE_BUG, SLEEPER, SMALL } from './helpers';

const base = { validateConcurrency: 8, trainConcurrency: 1, stock: true, reservedCores: 1, memoryMb: 6000 };

test('a worker leaves a core to what runs beside it; the CLI takes them all', () => {
  assert.equal(poolSizing({ ...base, cores: 2 }).validateJobs, 1);
  assert.equal(poolSizing({ ...base, cores: 16 }).validateJobs, 8);
  assert.equal(poolSizing({ ...base, cores: 16, validateConcurrency: 3 }).validateJobs, 3);
  assert.equal(poolSizing({ ...base, cores: 16, memoryMb: 1300 }).validateJobs, 2, 'two zygotes fit in 1.3 GB');
  const cli = poolSizing({ ...base, cores: 2, validateConcurrency: 6, stock: false, reservedCores: 0 });
  assert.deepEqual(cli, { validateJobs: 2, trainJobs: 1, stock: false, maxBooting: 2, idleS: 900 });
  assert.equal(poolSizing({ ...base, cores: 1 }).validateJobs, 1, 'never below one');
});

test('ARCHLOOP_SANDBOX_JOBS overrides the job counts', () => {
  const sizing = poolSizing({ ...base, cores: 2 });
  assert.deepEqual(sizingFromEnv(sizing, { ARCHLOOP_SANDBOX_JOBS: 'validate=3,train=2' }), { ...sizing, validateJobs: 3, trainJobs: 2 });
  assert.equal(sizingFromEnv(sizing, {}), sizing);
  assert.throws(() => sizingFromEnv(sizing, { ARCHLOOP_SANDBOX_JOBS: '3' }), /validate=2,train=1/);
});

const sizing: PoolSizing = { validateJobs: 2, trainJobs: 1, stock: false, maxBooting: 1, idleS: 900 };
const settings = settingsFromEnv({});

test('jobs at once through one server: each gets its own outcome, a timed-out one is cancelled', async () => {
  const pool = new SandboxPool({ sizing });
  try {
    const sleeper = pool.run(buildRequest('validate', SLEEPER, SMALL, settings), { timeoutS: 60 });
    const [good, broken] = await Promise.all([
      pool.run(buildRequest('validate', GOOD_NET, SMALL, settings)),
      pool.run(buildRequest('validate', SHAPE_BUG, SMALL, settings)),
    ]);
    assert.equal(good.ok, true, JSON.stringify(good.failure));
    assert.equal(broken.failure?.class, 'shape');
    assert.equal(good.sandbox?.mode, 'bwrap');
    const server = pool.serverPid;
    const stuck = pool.run(buildRequest('validate', SLEEPER, SMALL, settings), { timeoutS: 3 });
    await assert.rejects(stuck, (error: unknown) => error instanceof SandboxInfraError && error.retryable && /within 3 s/.test(error.message));
    const after = await pool.run(buildRequest('validate', GOOD_NET, SMALL, settings));
    assert.equal(after.ok, true);
    assert.equal(pool.serverPid, server, 'a cancelled job does not cost the server');
    assert.ok((after.sandbox?.zygoteJobs ?? 0) >= 3, 'the same zygote served them');
    void sleeper.catch(() => undefined);
  } finally {
    await pool.close();
  }
});

test('a dead server fails its jobs as retryable, and the next job starts a new one', async () => {
  const pool = new SandboxPool({ sizing });
  try {
    const pending = pool.run(buildRequest('validate', SLEEPER, SMALL, settings));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const first = pool.serverPid!;
    process.kill(-first, 'SIGKILL');
    await assert.rejects(pending, (error: unknown) => error instanceof SandboxInfraError && error.retryable && /runner exited/.test(error.message));
    const next = await pool.run(buildRequest('validate', GOOD_NET, SMALL, settings));
    assert.equal(next.ok, true);
    assert.notEqual(pool.serverPid, first);
  } finally {
    await pool.close();
  }
});

test('unsafe mode goes through the same pool, marked', async () => {
  const pool = new SandboxPool({ sizing, env: { ARCHLOOP_ALLOW_UNSAFE: '1' } });
  try {
    const outcome = await pool.run(buildRequest('validate', GOOD_NET, SMALL, { ...settings, mode: 'none' }));
    assert.equal(outcome.ok, true, JSON.stringify(outcome.failure));
    assert.equal(outcome.sandbox?.mode, 'none');
    assert.match(outcome.warnings[0] ?? '', /^UNSAFE/);
  } finally {
    await pool.close();
  }
});
