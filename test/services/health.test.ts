/**
 * Health checks that cannot be fooled by a neighbour: two `services up` at once can pick
 * the same free port, and the one whose server loses the bind must notice at once, not
 * take the other's server for its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { llmHealthy } from '../../src/services/llm';
import { isRunning, processExists, ProcessExited, waitFor } from '../../src/services/process';

test('llmHealthy with a pid accepts only the server of that process', async () => {
  const server = http.createServer((_req, res) => res.end(JSON.stringify({ status: 'ok', model: 'm', pid: 4242 })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  try {
    assert.equal(await llmHealthy(url), true, 'without a pid: anything healthy');
    assert.equal(await llmHealthy(url, 4242), true);
    assert.equal(await llmHealthy(url, 4243), false, "another process's server is not ours");
  } finally {
    server.close();
  }
});

test('waitFor stops at once when the process it waits on has exited', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor('llm server', async () => false, 60_000, '/tmp/x.log', () => false),
    (error: unknown) => error instanceof ProcessExited && /exited before it became healthy \(see \/tmp\/x\.log\)/.test(error.message),
  );
  assert.ok(Date.now() - started < 2000);
  await waitFor('ready', async () => true, 1000, undefined, () => false); // healthy wins over a late exit check
});

test('a zombie exists but does not run (a killed postmaster before init reaps it)', async () => {
  // The background `sleep 0` exits under a parent (`exec sleep 3`) that never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 3'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(d.toString()))));
  await waitFor('the zombie', async () => !isRunning(pid), 2000);
  assert.equal(processExists(pid), true);
  assert.equal(isRunning(pid), false);
  assert.equal(isRunning(process.pid), true);
  parent.kill('SIGKILL');
});
