/** The pure parts of `archloop watch`: bars, durations, ETA, the rendered view. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bar, estimateRemaining, formatDuration, renderWatch } from '../../src/client/watch-view';
import type { CycleProgress, RunProgress } from '../../src/workflows/definitions';

const progress: RunProgress = {
  runId: 'r',
  status: 'running',
  currentCycle: 2,
  totalCycles: 4,
  completed: [],
  model: 'adapter-1',
};
const cycle: CycleProgress = { cycle: 2, stage: 'evaluating', target: 10, sampled: 10, validated: 5, valid: 4, trained: 2, admitted: 0, repairs: 0, validAfterRepair: 4 };

test('bar', () => {
  assert.equal(bar(5, 10, 10), '[#####.....]    5/10');
  assert.equal(bar(0, 0, 4), '[....]    0/0');
  assert.equal(bar(12, 10, 4), '[####]   12/10', 'clamped');
});

test('formatDuration', () => {
  assert.equal(formatDuration(42), '42s');
  assert.equal(formatDuration(125), '2m05s');
  assert.equal(formatDuration(3 * 3600 + 60), '3h01m');
  assert.equal(formatDuration(Number.NaN), '?');
});

test('ETA: mean cycle time × (cycles after the current one + what is left of it)', () => {
  assert.equal(estimateRemaining({ progress, cycle, cycleSeconds: [] }), null);
  // current cycle done: (10/10 + 5/10 + 2/4) / 3 = 2/3, so 1/3 left; 2 cycles after it.
  const eta = estimateRemaining({ progress, cycle, cycleSeconds: [90, 110] })!;
  assert.ok(Math.abs(eta - 100 * (2 + 1 / 3)) < 1e-9, String(eta));
});

test('the view shows the stage bars, the ETA and the table', () => {
  const view = renderWatch({ runId: 'r', workflowStatus: 'RUNNING', progress, cycle, table: 'TABLE', cycleSeconds: [60], uiUrl: 'http://ui' });
  assert.match(view, /cycle 2 of 4, sampling from adapter-1/);
  assert.match(view, /validated \[#+\.+\]\s+5\/10 {2}\(4 valid\)/);
  assert.match(view, /trained {3}\[#+\.+\]\s+2\/4/);
  assert.match(view, /ETA 2m20s/);
  assert.match(view, /TABLE$/);
});

test('before cycle 0 the view says what the run is checking', () => {
  const before = { ...progress, currentCycle: null, completed: [], details: "checking the seed corpus at the run's shape" };
  const view = renderWatch({ runId: 'r', workflowStatus: 'RUNNING', progress: before, cycle: null, table: 'TABLE', cycleSeconds: [], uiUrl: 'http://ui' });
  assert.match(view, /between cycles of 4/);
  assert.match(view, /now {7}checking the seed corpus at the run's shape/);
});
