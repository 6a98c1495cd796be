/** runTrainer against the real Python trainer: an output dir held by another trainer is "busy", a retryable state. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { pythonBin } from '../../src/env';
import { runTrainer, TrainerBusy, TrainerError, TrainerJob } from '../../src/llm/trainer';

const dir = mkdtempSync(path.join(os.tmpdir(), 'archloop-trainer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a second trainer on a locked output dir fails fast with TrainerBusy (not a job error)', async () => {
  const outputDir = path.join(dir, 'out');
  mkdirSync(path.join(dir, 'model'));
  mkdirSync(outputDir);
  const pairsFile = path.join(dir, 'pairs.jsonl');
  const messages = [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }];
  writeFileSync(pairsFile, `${JSON.stringify({ messages })}\n`);
  const job = TrainerJob.parse({
    baseModel: path.join(dir, 'model'), pairsFile, outputDir, previousAdapter: null, r: 4, alpha: 8, dropout: 0,
    targetModules: ['q_proj'], lr: 0.01, epochs: 1, batchSize: 1, maxSeqLen: 64, checkpointEvery: 1, bf16: false,
    load4bit: false, seed: 1, maxSteps: 1,
  });
  const jobFile = path.join(dir, 'job.json');
  writeFileSync(jobFile, JSON.stringify(job));

  // Another trainer's lock, held by a process of its own.
  const holder = spawn(pythonBin(), ['-c', [
    'import fcntl, os, sys, time',
    `fd = os.open(${JSON.stringify(path.join(outputDir, '.lock'))}, os.O_RDWR | os.O_CREAT)`,
    'fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b"4242\\n"); print("held", flush=True); time.sleep(120)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    for await (const line of createInterface({ input: holder.stdout! })) if (line === 'held') break;
    const started = Date.now();
    await assert.rejects(runTrainer(jobFile), (error: Error) => {
      assert.ok(error instanceof TrainerBusy && !(error instanceof TrainerError), `got ${error.name}: ${error.message}`);
      assert.match(error.message, /is in use by another trainer \(pid 4242\)/);
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'before any model is loaded');
  } finally {
    holder.kill('SIGKILL');
  }
});
