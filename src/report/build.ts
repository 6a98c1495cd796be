/**
 * `buildReport(pool, runId, outDir)`: reads a run from Postgres and writes
 *   index.html                 the self-contained page
 *   table.csv, table.json      the per-cycle table (and, in JSON, the run summary)
 *   figures/<name>.svg|png     every chart
 *   architectures/<rank>-candidate-<id>.svg|png|py   diagrams and code of the top models
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Queryable } from '../db/pool';
import { allCharts, type ChartSpec } from './charts';
import { diagramFromIr, diagramToDot } from './graph-ir';
import { renderPage, type ArchitectureView, type FigureView, type RunInfo } from './html';
import type { ArchitectureRow } from '../db/candidates';
import type { RunRow } from '../db/runs';
import { loadReportData } from './load';
import { loadDotRenderer, svgToPng, vegaLiteToSvg, type DotRenderer } from './render';
import { accuracyPoints, failureCounts } from './series';
import { inlineSvg } from './svg';
import { learningComparison } from '../core/learning';
import { loadLearningInput } from '../db/learning';
import { runAdapters } from '../db/adapters';
import { fineTuneLine } from '../core/fine-tunes';
import { percent } from '../core/paper-table';
import { TABLE_COLUMNS, tableRow } from '../core/paper-table';
import { cycleMetricsOf, cyclePaperRows, summarize, tableToCsv } from './table';

export interface ReportOptions {
  /** How many top architectures to show (by accuracy). */
  top?: number;
  /** Timestamp printed in the report (tests pin it). */
  now?: Date;
}

export interface ReportResult {
  indexPath: string;
  /** Every file written, relative to the output directory. */
  files: string[];
}

const ConfigGlimpse = z.looseObject({
  dataset: z.looseObject({ name: z.string() }).optional(),
  llm: z.looseObject({ model: z.string() }).optional(),
});

/** What the page header shows about a run; an unreadable config only blanks those fields. */
export function runInfo(run: RunRow): RunInfo {
  const config = ConfigGlimpse.safeParse(run.config);
  return {
    id: run.id,
    name: run.name,
    preset: run.preset,
    status: run.status,
    dataset: config.success ? (config.data.dataset?.name ?? null) : null,
    model: config.success ? (config.data.llm?.model ?? null) : null,
    createdAt: run.created_at,
    finishedAt: run.finished_at,
  };
}

class OutputDir {
  readonly written: string[] = [];
  constructor(readonly root: string) {}

  async write(relative: string, content: string | Buffer): Promise<string> {
    const target = path.join(this.root, relative);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
    this.written.push(relative);
    return relative;
  }
}

async function renderFigure(out: OutputDir, chart: ChartSpec): Promise<FigureView> {
  const svg = await vegaLiteToSvg(chart.spec);
  const svgFile = await out.write(`figures/${chart.name}.svg`, svg);
  const pngFile = await out.write(`figures/${chart.name}.png`, svgToPng(svg));
  return { name: chart.name, title: chart.title, svg: inlineSvg(svg, `fig-${chart.name}`), svgFile, pngFile, empty: chart.empty };
}

async function renderArchitecture(
  out: OutputDir,
  dot: () => Promise<DotRenderer>,
  row: ArchitectureRow,
  rank: number,
): Promise<ArchitectureView> {
  const stem = `architectures/${rank}-candidate-${row.id}`;
  const diagram = diagramFromIr(row.graph_ir);
  let diagramSvg: string | null = null;
  const files: ArchitectureView['files'] = { svg: null, png: null, code: null };
  if (diagram) {
    const svg = (await dot()).toSvg(diagramToDot(diagram));
    files.svg = await out.write(`${stem}.svg`, svg);
    files.png = await out.write(`${stem}.png`, svgToPng(svg, 1.5));
    diagramSvg = inlineSvg(svg, `arch-${rank}`);
  }
  if (row.code !== null) files.code = await out.write(`${stem}.py`, row.code);
  return {
    rank,
    candidateId: row.id,
    cycle: row.cycle,
    sampleIndex: row.sample_index,
    accuracyPct: percent(row.accuracy),
    params: row.params,
    flops: row.flops,
    status: row.status,
    code: row.code,
    diagramSvg,
    files,
  };
}

/** Loads the wasm Graphviz only when the first diagram needs it. */
function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= load());
}

export async function buildReport(db: Queryable, runId: string, outDir: string, options: ReportOptions = {}): Promise<ReportResult> {
  const now = options.now ?? new Date();
  const data = await loadReportData(db, runId, options.top ?? 8);
  const paper = cyclePaperRows(data.cycles, data.outcomes);
  const rows = paper.map(tableRow);
  const learning = learningComparison({ ...(await loadLearningInput(db, runId)), cycles: cycleMetricsOf(data.cycles, data.outcomes).map((c) => c.metrics) });
  const cycles = new Set(rows.map((row) => row.cycle));
  const summary = summarize(paper);
  const out = new OutputDir(path.resolve(outDir));

  const figures: FigureView[] = [];
  for (const chart of allCharts(rows, accuracyPoints(data.outcomes, cycles), failureCounts(data.outcomes, cycles))) {
    figures.push(await renderFigure(out, chart));
  }
  const dot = lazy(loadDotRenderer);
  const architectures: ArchitectureView[] = [];
  for (const [index, row] of data.top.entries()) architectures.push(await renderArchitecture(out, dot, row, index + 1));

  const files = {
    csv: await out.write('table.csv', tableToCsv(rows)),
    json: await out.write(
      'table.json',
      JSON.stringify(
        { runId, generatedAt: now.toISOString(), columns: TABLE_COLUMNS.map(({ key, title }) => ({ key, title })), summary, learning, rows },
        null,
        2,
      ) + '\n',
    ),
  };
  const fineTunes = (await runAdapters(db, runId)).map(fineTuneLine);
  const page = renderPage({ run: runInfo(data.run), generatedAt: now, summary, learning, fineTunes, rows, figures, architectures, files });
  await out.write('index.html', page);
  return { indexPath: path.join(out.root, 'index.html'), files: out.written };
}
