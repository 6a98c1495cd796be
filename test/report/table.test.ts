import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeCycleMetrics, wilsonInterval } from '../../src/core/metrics';
import type { OutcomeRow } from '../../src/db/candidates';
import type { CycleRow } from '../../src/db/runs';
import { accuracyPoints, failureCounts } from '../../src/report/series';
import { percent, TABLE_COLUMNS, tableRow } from '../../src/core/paper-table';
import { csvField, cyclePaperRows, summarize, tableToCsv } from '../../src/report/table';

let nextIndex = 0;
function outcome(cycle: number, over: Partial<OutcomeRow> = {}): OutcomeRow {
  return { cycle, sample_index: nextIndex++, attempt: 0, status: 'trained', valid: true, novel: null, admitted: false, failure_class: null, accuracy: 0.5, ...over };
}

const outcomes: OutcomeRow[] = [
  outcome(1, { accuracy: 0.3 }),
  outcome(1, { accuracy: 0.45, admitted: true, status: 'admitted' }),
  outcome(1, { valid: false, accuracy: null, failure_class: 'syntax', status: 'invalid' }),
  outcome(1, { valid: null, accuracy: null, failure_class: 'no-code', status: 'extract-failed' }),
  outcome(2, { accuracy: 0.6, admitted: true }),
  outcome(2, { accuracy: null, failure_class: 'timeout', status: 'train-failed' }),
  outcome(2, { valid: false, accuracy: null, failure_class: 'syntax', status: 'invalid' }),
];

const cycles: CycleRow[] = [
  { cycle: 0, model: 'base', status: 'finished', metrics: null, corpus_size: 5 },
  // Stored metrics win over the rows (here deliberately different, to see which is used).
  { cycle: 1, model: 'a0', status: 'finished', metrics: { ...computeCycleMetrics(1, [], 6), sampled: 10, valid: 4, validRate: 0.4 }, corpus_size: 6 },
  { cycle: 2, model: 'a1', status: 'running', metrics: null, corpus_size: 7 },
];

describe('per-cycle table', () => {
  it('uses stored metrics for finished cycles, candidate rows for running ones, and skips cycles that sampled nothing', () => {
    const rows = cyclePaperRows(cycles, outcomes).map(tableRow);
    assert.deepEqual(
      rows.map((r) => [r.cycle, r.finished, r.sampled, r.valid]),
      [
        [1, true, 10, 4],
        [2, false, 3, 2],
      ],
    );
    const running = rows[1]!;
    const [low, high] = wilsonInterval(2, 3);
    assert.equal(running.validPct, 66.67);
    assert.equal(running.validLowPct, percent(low));
    assert.equal(running.validHighPct, percent(high));
    assert.equal(running.bestPct, 60);
    assert.equal(running.meanPct, 60);
    assert.equal(running.above40Pct, 100);
    assert.equal(running.unique, 1);
    assert.equal(running.totalTrainPrompts, 7);
    assert.equal(running.trained, 1);
  });

  it('rounds percentages to two decimals and keeps null as null', () => {
    assert.equal(percent(0.123456), 12.35);
    assert.equal(percent(1), 100);
    assert.equal(percent(null), null);
  });

  it('summarizes the run with a pooled Wilson interval, the peak cycle and first/last trends', () => {
    const rows = cyclePaperRows(cycles, outcomes).map(tableRow);
    const summary = summarize(cyclePaperRows(cycles, outcomes));
    const [low, high] = wilsonInterval(6, 13);
    assert.equal(summary.sampled, 13);
    assert.equal(summary.valid, 6);
    assert.equal(summary.validPct, percent(6 / 13));
    assert.equal(summary.validLowPct, percent(low));
    assert.equal(summary.validHighPct, percent(high));
    assert.deepEqual(summary.peakValid, { cycle: 2, pct: 66.67 });
    assert.equal(summary.lastMeanPct, 60);
    assert.equal(summary.admitted, rows[0]!.unique + 1);
    assert.equal(summarize([]).peakValid, null);
  });
});

describe('CSV', () => {
  it('quotes only fields that need it', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\nlines'), '"two\nlines"');
    assert.equal(csvField(null), '');
    assert.equal(csvField(12.5), '12.5');
  });

  it('writes the paper columns first, one line per cycle, empty cells for missing values', () => {
    const rows = cyclePaperRows(cycles, [outcome(2, { valid: false, accuracy: null, failure_class: 'shape' })]).map(tableRow);
    const lines = tableToCsv(rows).split('\r\n');
    assert.equal(lines[0], TABLE_COLUMNS.map((c) => c.title).join(','));
    assert.ok(lines[0]!.startsWith('Cycle,Valid %,Best %,Mean %,≥40 %,Unique,Total train prompts,'));
    assert.equal(lines.length, rows.length + 2); // header, rows, trailing empty string after the last CRLF
    assert.equal(lines[2], '2,0,,,,0,7,0,0,79.35,1,0,0,false');
  });
});

describe('series from candidate rows', () => {
  it('plots accuracies of valid, trained candidates of the table cycles only', () => {
    const points = accuracyPoints([...outcomes, outcome(9, { accuracy: 0.9 })], new Set([1, 2]));
    assert.deepEqual(
      points.map((p) => [p.cycle, p.accuracyPct, p.admitted]),
      [
        [1, 30, false],
        [1, 45, true],
        [2, 60, true],
      ],
    );
  });

  it('counts failure classes per cycle in a stable order', () => {
    assert.deepEqual(failureCounts(outcomes, new Set([1, 2])), [
      { cycle: 1, failureClass: 'no-code', count: 1 },
      { cycle: 1, failureClass: 'syntax', count: 1 },
      { cycle: 2, failureClass: 'syntax', count: 1 },
      { cycle: 2, failureClass: 'timeout', count: 1 },
    ]);
  });
});
