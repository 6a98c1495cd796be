/** The TS client against the real Python runner and bubblewrap. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ProgressEvent } from '../../src/core/sandbox';
import { SandboxInfraError } from '../../src/sandbox/errors';
import { QUEUED_STAGE } from '../../src/sandbox/pool';
import { buildRequest, settingsFromEnv } from '../../src/sandbox/request';
import { runnerEnv, runSandbox } from '../../src/sandbox/runner';
import { pythonBin } from '../../src/env';
import { GOOD_NET, SHAPE_BUG, SLEEPER, SMALL } from './helpers';

const settings = settingsFromEnv({});

test('validates a good program in the sandbox and streams progress', async () => {
  const progress: ProgressEvent[] = [];
  const outcome = await runSandbox(buildRequest('validate', GOOD_NET, SMALL, settings), { onProgress: (e) => progress.push(e) });
  assert.equal(outcome.kind, 'validate');
  if (outcome.kind !== 'validate') return;
  assert.equal(outcome.ok, true, JSON.stringify(outcome.failure));
  assert.deepEqual(outcome.outputShape, [2, 10]);
  assert.equal(outcome.sandbox?.mode, 'bwrap');
  assert.match(outcome.structuralHash ?? '', /^[0-9a-f]{64}$/);
  // `queued` every few seconds while its zygote boots, then its sandbox's own stages
  const own = progress.filter((p) => p.stage !== QUEUED_STAGE);
  assert.ok(progress.slice(0, progress.length - own.length).every((p) => p.stage === QUEUED_STAGE));
  assert.deepEqual(own.slice(0, 2).map((p) => p.stage), ['start', 'ready']);
});

test('a broken program is a classified outcome, not an error', async () => {
  const outcome = await runSandbox(buildRequest('validate', SHAPE_BUG, SMALL, settings));
  assert.equal(outcome.ok, false);
  assert.equal(outcome.failure?.class, 'shape');
  assert.match(outcome.failure?.message ?? '', /expected \(2, 10\)/);
});

test('trains one epoch and scores it outside the sandbox', async () => {
  const outcome = await runSandbox(buildRequest('train', GOOD_NET, SMALL, settings));
  assert.equal(outcome.kind, 'train');
  if (outcome.kind !== 'train') return;
  assert.equal(outcome.ok, true, JSON.stringify(outcome.failure));
  assert.ok((outcome.accuracy ?? 0) > 0.2, `accuracy ${outcome.accuracy}`);
  assert.equal(outcome.trainImages, 1024);
  assert.equal(outcome.testSize, 256);
  assert.ok((outcome.timings.imagesPerS ?? 0) > 0);
});

test('the outer timeout kills the runner and its sandbox', async () => {
  const request = buildRequest('validate', SLEEPER, SMALL, settings);
  const started = Date.now();
  await assert.rejects(runSandbox(request, { timeoutS: 4 }), (error: unknown) => {
    assert.ok(error instanceof SandboxInfraError && error.retryable);
    return true;
  });
  assert.ok(Date.now() - started < 15_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(sandboxProcesses(), [], 'no sandbox process survives');
});

/** Processes of the per-slot sandbox users started from this checkout's interpreter. */
function sandboxProcesses(): string[] {
  const users = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('archloop-sbx-'))
    .map((line) => line.split(':')[2]!);
  if (users.length === 0) return [];
  const out = spawnSync('ps', ['-o', 'pid=,args=', '-U', users.join(',')]).stdout.toString(); // ps exits 1 when none
  return out.split('\n').filter((line) => line.includes(pythonBin()));
}

test('the runner is told its parent, to die with it', () => {
  const env = runnerEnv({}, { PATH: '/bin', CUDA_VISIBLE_DEVICES: '1', SECRET: 'x', ARCHLOOP_CGROUP_PARENT: '/workers' }, 4242);
  assert.equal(env.ARCHLOOP_PARENT_PID, '4242');
  assert.equal(env.CUDA_VISIBLE_DEVICES, '1', 'the allotted GPUs reach the sandbox');
  assert.equal(env.ARCHLOOP_CGROUP_PARENT, '/workers', 'so does where its cgroups go');
  assert.equal(env.SECRET, undefined, 'nothing else of the worker leaks in');
});

test('a missing runner or bwrap is a non-retryable infrastructure error', async () => {
  const request = buildRequest('validate', GOOD_NET, SMALL, settings);
  await assert.rejects(runSandbox(request, { python: '/nonexistent/python' }), (error: unknown) => {
    assert.ok(error instanceof SandboxInfraError && !error.retryable);
    assert.match(error.message, /runner not found/);
    return true;
  });
  const bin = mkdtempSync(path.join(tmpdir(), 'archloop-nobwrap-'));
  symlinkSync('/usr/bin/setpriv', path.join(bin, 'setpriv'));
  await assert.rejects(runSandbox(request, { env: { PATH: bin } }), (error: unknown) => {
    assert.ok(error instanceof SandboxInfraError && !error.retryable);
    assert.match(error.message, /bubblewrap/);
    return true;
  });
});
