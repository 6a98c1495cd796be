/**
 * The report's figures as Vega-Lite specs: pure data → spec, nothing rendered here.
 * Every chart puts cycles on an ordinal x axis so that a 3-cycle demo and a 22-cycle
 * paper run read the same way.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AccuracyPoint, FailureCount } from './series';
import type { CycleTableRow } from '../core/paper-table';

export interface ChartSpec {
  /** File stem and element id, e.g. `valid-rate`. */
  name: string;
  title: string;
  spec: TopLevelSpec;
  /** No data to plot yet (e.g. no candidate trained): the chart shows only its axes. */
  empty: boolean;
}

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const WIDTH = 440;
const HEIGHT = 230;

const base = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  width: WIDTH,
  height: HEIGHT,
  background: 'white',
  padding: 8,
  config: {
    font: FONT,
    title: { anchor: 'start', fontSize: 14 },
    axis: { labelFontSize: 11, titleFontSize: 12 },
    legend: { labelFontSize: 11, titleFontSize: 11 },
  },
} as const;

/** The same cycle axis on every chart, even where some cycles have nothing to plot. */
function cycleAxis(cycles: readonly number[]) {
  return { field: 'cycle', type: 'ordinal', title: 'Cycle', axis: { labelAngle: 0 }, scale: { domain: [...cycles] } } as const;
}

const cyclesOf = (rows: readonly CycleTableRow[]) => rows.map((row) => row.cycle);
const percentScale = { domain: [0, 100] } as const;
/** Counts: whole-number ticks, also when every count is 0. */
const countAxis = { tickMinStep: 1, format: 'd' } as const;

function chart(name: string, title: string, values: readonly object[], body: Record<string, unknown>): ChartSpec {
  const spec = { ...base, title, data: { values }, ...body } as TopLevelSpec;
  return { name, title, spec, empty: values.length === 0 };
}

export function validRateChart(rows: readonly CycleTableRow[]): ChartSpec {
  return chart('valid-rate', 'Valid rate per cycle (95 % Wilson interval)', rows, {
    encoding: { x: cycleAxis(cyclesOf(rows)) },
    layer: [
      {
        mark: { type: 'errorbar', ticks: true, color: '#2563eb' },
        encoding: {
          y: { field: 'validLowPct', type: 'quantitative', title: 'Valid %', scale: percentScale },
          y2: { field: 'validHighPct' },
        },
      },
      {
        mark: { type: 'line', point: true, color: '#1d4ed8' },
        encoding: {
          y: { field: 'validPct', type: 'quantitative', title: 'Valid %' },
          tooltip: [{ field: 'cycle' }, { field: 'validPct' }, { field: 'validLowPct' }, { field: 'validHighPct' }],
        },
      },
    ],
  });
}

export function accuracyChart(rows: readonly CycleTableRow[]): ChartSpec {
  const trained = rows.filter((row) => row.bestPct !== null);
  return chart('accuracy', 'Best and mean first-epoch accuracy', trained, {
    transform: [
      { calculate: 'datum.bestPct', as: 'Best' },
      { calculate: 'datum.meanPct', as: 'Mean' },
      { fold: ['Best', 'Mean'], as: ['series', 'accuracyPct'] },
      { filter: 'isValid(datum.accuracyPct)' },
    ],
    mark: { type: 'line', point: true },
    encoding: {
      x: cycleAxis(cyclesOf(rows)),
      y: { field: 'accuracyPct', type: 'quantitative', title: 'Accuracy %', scale: percentScale },
      color: { field: 'series', type: 'nominal', title: null, scale: { range: ['#16a34a', '#9333ea'] } },
    },
  });
}

export function shareAbove40Chart(rows: readonly CycleTableRow[]): ChartSpec {
  return chart('share-above-40', 'Share of trained models with accuracy ≥ 40 %', rows.filter((row) => row.above40Pct !== null), {
    mark: { type: 'bar', color: '#0891b2' },
    encoding: {
      x: cycleAxis(cyclesOf(rows)),
      y: { field: 'above40Pct', type: 'quantitative', title: '≥ 40 % (share of trained, %)', scale: percentScale },
    },
  });
}

export function admittedChart(rows: readonly CycleTableRow[]): ChartSpec {
  return chart('admitted', 'Novel architectures admitted per cycle', rows, {
    encoding: { x: cycleAxis(cyclesOf(rows)), y: { field: 'unique', type: 'quantitative', title: 'Admitted (novel, unique)', axis: countAxis } },
    layer: [{ mark: { type: 'bar', color: '#ea580c' } }, { mark: { type: 'text', dy: -7 }, encoding: { text: { field: 'unique' } } }],
  });
}

export function accuracyDistributionChart(cycles: readonly number[], points: readonly AccuracyPoint[]): ChartSpec {
  return chart('accuracy-distribution', 'Accuracy distribution per cycle (valid, trained candidates)', points, {
    encoding: { x: cycleAxis(cycles) },
    layer: [
      {
        mark: { type: 'boxplot', extent: 'min-max', size: 28, opacity: 0.5 },
        encoding: { y: { field: 'accuracyPct', type: 'quantitative', title: 'Accuracy %', scale: percentScale } },
      },
      {
        mark: { type: 'point', filled: true, size: 28, opacity: 0.8 },
        encoding: {
          y: { field: 'accuracyPct', type: 'quantitative' },
          xOffset: { field: 'jitter', type: 'quantitative', scale: { domain: [-1, 1] } },
          color: {
            field: 'status',
            type: 'nominal',
            title: null,
            scale: { domain: ['admitted', 'not admitted'], range: ['#ea580c', '#475569'] },
          },
        },
        transform: [
          // Deterministic jitter (no random): spreads points of one cycle apart.
          { window: [{ op: 'row_number', as: 'rank' }], groupby: ['cycle'] },
          { calculate: '((datum.rank * 0.618034) % 1) * 1.4 - 0.7', as: 'jitter' },
          { calculate: "datum.admitted ? 'admitted' : 'not admitted'", as: 'status' },
        ],
      },
    ],
  });
}

export function failureClassesChart(cycles: readonly number[], counts: readonly FailureCount[]): ChartSpec {
  return chart('failure-classes', 'Failure classes per cycle', counts, {
    mark: { type: 'bar' },
    encoding: {
      x: cycleAxis(cycles),
      y: { field: 'count', type: 'quantitative', title: 'Candidates', stack: 'zero', axis: countAxis },
      color: { field: 'failureClass', type: 'nominal', title: 'Failure class', scale: { scheme: 'tableau10' } },
      tooltip: [{ field: 'cycle' }, { field: 'failureClass' }, { field: 'count' }],
    },
  });
}

export function allCharts(rows: readonly CycleTableRow[], points: readonly AccuracyPoint[], failures: readonly FailureCount[]): ChartSpec[] {
  return [
    validRateChart(rows),
    accuracyChart(rows),
    shareAbove40Chart(rows),
    admittedChart(rows),
    accuracyDistributionChart(cyclesOf(rows), points),
    failureClassesChart(cyclesOf(rows), failures),
  ];
}
