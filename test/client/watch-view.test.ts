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

test('programs valid after repair train too: the trained bar counts them, the validated line says how many', () => {
  // What the demo showed as "trained 2/1": one valid at the first attempt, one more after repair.
  const repaired = { ...cycle, validated: 6, valid: 1, validAfterRepair: 2, trained: 2, repairs: 5 };
  const view = renderWatch({ runId: 'r', workflowStatus: 'RUNNING', progress, cycle: repaired, table: 'T', cycleSeconds: [60], uiUrl: 'u' });
  assert.match(view, /\(1 valid, 1 more after repair\)/);
  assert.match(view, /trained {3}\[#+\]\s+2\/2/);
});

test('cycle 0 (the baseline) trains nothing: no trained or admitted lines', () => {
  const baseline = { ...cycle, cycle: 0, stage: 'evaluating' as const, target: 6, sampled: 6, validated: 6, valid: 3, trained: 0, validAfterRepair: 0 };
  const view = renderWatch({ runId: 'r', workflowStatus: 'RUNNING', progress: { ...progress, currentCycle: 0 }, cycle: baseline, table: 'T', cycleSeconds: [], uiUrl: 'u' });
  assert.match(view, /\(3 valid\)/);
  assert.doesNotMatch(view, /trained|admitted/);
});

test('before cycle 0 the view says what the run is checking', () => {
  const before = { ...progress, currentCycle: null, completed: [], details: "checking the seed corpus at the run's shape" };
  const view = renderWatch({ runId: 'r', workflowStatus: 'RUNNING', progress: before, cycle: null, table: 'TABLE', cycleSeconds: [], uiUrl: 'http://ui' });
  assert.match(view, /between cycles of 4/);
  assert.match(view, /now {7}checking the seed corpus at the run's shape/);
});
