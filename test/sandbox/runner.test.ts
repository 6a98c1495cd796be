/** The TS client against the real Python runner and bubblewrap. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ProgressEvent } from '../../src/core/sandbox';
import { SandboxInfraError } from '../../src/sandbox/errors';
import { buildRequest, settingsFromEnv } from '../../src/sandbox/request';
import { runSandbox } from '../../src/sandbox/runner';
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
  assert.deepEqual(progress.slice(0, 2).map((p) => p.stage), ['start', 'ready']);
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
  const left = spawnSync('ps', ['-o', 'pid=,args=', '-U', 'archloop-sbx']).stdout.toString().trim(); // ps exits 1 when none
  assert.equal(left, '', 'no sandbox process survives');
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
