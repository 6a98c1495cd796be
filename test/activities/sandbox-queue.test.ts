/**
 * Queue time is not the candidate's (issue 20). One validate slot; three validations that
 * run to their limit are queued ahead of a quick one. The quick one's activity heartbeats
 * while it waits, its limit counts from its own start in its sandbox, and it passes.
 * The real server, zygote and sandbox; Temporal's MockActivityEnvironment records heartbeats.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runInActivity, type HeartbeatDetails } from '../../src/activities/sandbox-run';
import { buildConfig } from '../../src/core/config';
import type { SandboxOutcome } from '../../src/core/sandbox';
import { QUEUED_STAGE, SandboxPool } from '../../src/sandbox/pool';
import { buildRequest, settingsFromEnv } from '../../src/sandbox/request';
import type { runSandbox } from '../../src/sandbox/runner';
import { GOOD_NET, SLEEPER } from '../sandbox/helpers';

const LIMIT_S = 6;
/** The outer limit: the sandbox's own plus 10 s, far less than the ~3 × 6 s the quick one queues. */
const OUTER_S = LIMIT_S + 10;
/** python/archloop/runner/progress.py QUEUE_BEAT_S, and slack for a loaded machine. */
const MAX_SILENCE_MS = 5_000 + 4_000;

const config = buildConfig('demo', {
  dataset: { name: 'synthetic', syntheticTrainSize: 1024, syntheticTestSize: 256 },
  contract: { validateTimeoutS: LIMIT_S },
  training: { batchSize: 16, threads: 1, timeLimitS: 60, maxTrainImages: 0 },
});
const request = (code: string) => buildRequest('validate', code, config, settingsFromEnv({}));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('three validations at the limit queued ahead of a quick one do not make it fail', async (t) => {
  const pool = new SandboxPool({ sizing: { validateJobs: 1, trainJobs: 1, stock: false, maxBooting: 1, idleS: 900 } });
  const runner: typeof runSandbox = (req, options = {}) => pool.run(req, { ...options, timeoutS: OUTER_S });
  try {
    assert.equal((await pool.run(request(GOOD_NET))).ok, true, 'the zygote is booted before the queue forms');

    const slow: Array<Promise<SandboxOutcome>> = [];
    for (let i = 0; i < 3; i++) {
      slow.push(new MockActivityEnvironment().run(runInActivity, request(SLEEPER), 100 + i, runner) as Promise<SandboxOutcome>);
      await sleep(300); // in this order
    }
    const beats: Array<{ at: number; details: HeartbeatDetails }> = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (details: unknown) => beats.push({ at: Date.now(), details: details as HeartbeatDetails }));
    const started = Date.now();
    const quick = (await env.run(runInActivity, request(GOOD_NET), 7, runner)) as SandboxOutcome;
    const ended = Date.now();

    for (const outcome of await Promise.all(slow)) {
      assert.equal(outcome.failure?.class, 'timeout', 'each slow one is stopped at its own limit');
    }
    assert.equal(quick.ok, true, JSON.stringify(quick.failure));
    assert.ok(quick.sandbox?.cgroup ?? quick.sandbox?.cgroupNote, 'the result says which caps held its sandbox');
    const waited = quick.timings.sandboxWaitS ?? 0;
    assert.ok(waited >= 2 * LIMIT_S, `it waited behind the slow ones (${waited} s)`);
    assert.ok((ended - started) / 1000 > OUTER_S, 'its activity outlasted the outer limit, which counts from its start');
    // Heartbeats all along: while queued, then its own progress.
    const queued = beats.filter((beat) => beat.details.stage === QUEUED_STAGE);
    assert.ok(queued.length >= 2, `queued heartbeats: ${queued.length}`);
    assert.ok(queued.every((beat) => beat.details.candidateId === 7 && typeof beat.details.elapsedS === 'number'));
    const times = [started, ...beats.map((beat) => beat.at), ended];
    const silence = Math.max(...times.slice(1).map((at, i) => at - times[i]!));
    assert.ok(silence <= MAX_SILENCE_MS, `longest silence ${silence} ms`);
    t.diagnostic(`queued ${waited} s, activity ${(ended - started) / 1000} s, ${queued.length} queued heartbeats, longest silence ${silence} ms`);
  } finally {
    await pool.close();
  }
});
