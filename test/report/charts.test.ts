import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allCharts } from '../../src/report/charts';
import type { CycleTableRow } from '../../src/core/paper-table';

function row(cycle: number, over: Partial<CycleTableRow> = {}): CycleTableRow {
  return {
    cycle,
    validPct: 50,
    validLowPct: 30,
    validHighPct: 70,
    validAfterRepairPct: 60,
    bestPct: 60,
    meanPct: 40,
    above40Pct: 50,
    unique: 2,
    totalTrainPrompts: 10 + cycle,
    sampled: 10,
    valid: 5,
    trained: 4,
    finished: true,
    ...over,
  };
}

const values = (spec: unknown) => (spec as { data: { values: unknown[] } }).data.values;

describe('chart specs', () => {
  const rows = [row(1, { bestPct: null, meanPct: null, above40Pct: null, trained: 0 }), row(2), row(3)];
  const charts = allCharts(rows, [{ cycle: 2, accuracyPct: 55, admitted: true }], []);

  it('has one chart per figure the report promises, with distinct names', () => {
    assert.deepEqual(
      charts.map((c) => c.name),
      ['valid-rate', 'accuracy', 'share-above-40', 'admitted', 'accuracy-distribution', 'failure-classes'],
    );
  });

  it('leaves untrained cycles out of accuracy plots but keeps every cycle on the x axis', () => {
    const byName = new Map(charts.map((c) => [c.name, c]));
    assert.equal(values(byName.get('accuracy')!.spec).length, 2);
    assert.equal(values(byName.get('share-above-40')!.spec).length, 2);
    assert.equal(values(byName.get('valid-rate')!.spec).length, 3);
    assert.match(JSON.stringify(byName.get('accuracy')!.spec), /"domain":\[1,2,3\]/);
  });

  it('marks charts with nothing to plot as empty', () => {
    assert.deepEqual(
      charts.filter((c) => c.empty).map((c) => c.name),
      ['failure-classes'],
    );
  });

  it('compiles every spec with Vega-Lite', async () => {
    const vegaLite = await import('vega-lite');
    for (const chart of charts) {
      const compiled = vegaLite.compile(chart.spec).spec;
      assert.ok(JSON.stringify(compiled).includes(chart.title), chart.name);
    }
  });
});
