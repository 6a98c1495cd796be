/**
 * The report page: one self-contained HTML file. Figures and diagrams are inlined as SVG
 * (ids already scoped per figure), styles are inline, and the only links are relative
 * ones to the files written beside it, so the page opens offline from any directory.
 */
import { escapeHtml as esc, formatCount, formatPct } from './format';
import { describePaired, formatRate, type LearningComparison, type SeedComparison, type Verdict } from '../core/learning';
import { formatPValue, type PairedOutcome } from '../core/paired';
import { TABLE_COLUMNS, type CycleTableRow } from '../core/paper-table';
import type { RunSummary } from './table';
import { percent } from '../core/paper-table';

export interface RunInfo {
  id: string;
  name: string;
  preset: string;
  status: string;
  dataset: string | null;
  model: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface FigureView {
  name: string;
  title: string;
  /** SVG markup ready to inline. */
  svg: string;
  svgFile: string;
  pngFile: string;
  empty: boolean;
}

export interface ArchitectureView {
  rank: number;
  candidateId: number;
  cycle: number;
  sampleIndex: number;
  accuracyPct: number;
  params: number | null;
  flops: number | null;
  status: string;
  code: string | null;
  /** Inline-ready diagram, or null when the graph IR held nothing drawable. */
  diagramSvg: string | null;
  files: { svg: string | null; png: string | null; code: string | null };
}

export interface PageModel {
  run: RunInfo;
  generatedAt: Date;
  summary: RunSummary;
  learning: LearningComparison;
  /** One line per fine-tune (src/core/fine-tunes.ts). */
  fineTunes: string[];
  rows: CycleTableRow[];
  figures: FigureView[];
  architectures: ArchitectureView[];
  files: { csv: string; json: string };
}

const STYLE = `
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 0; color: #0f172a; background: #f8fafc; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 12px; border-bottom: 1px solid #cbd5e1; padding-bottom: 4px; }
.meta { color: #475569; font-size: 13px; } .meta span { margin-right: 16px; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 10px; }
.stat { background: white; border: 1px solid #e2e8f0; border-radius: 6px; padding: 10px 12px; }
.stat b { display: block; font-size: 18px; } .stat small { color: #475569; }
table.cycles { border-collapse: collapse; background: white; font-size: 13px; }
table.cycles th, table.cycles td { border: 1px solid #e2e8f0; padding: 4px 10px; text-align: right; }
table.cycles th { background: #f1f5f9; } tr.unfinished td { color: #64748b; font-style: italic; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; }
figure { margin: 0; background: white; border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; } figcaption { font-size: 12px; color: #475569; }
article.arch { background: white; border: 1px solid #e2e8f0; border-radius: 6px; padding: 12px; margin-bottom: 14px; }
article.arch h3 { margin: 0 0 6px; font-size: 16px; }
.arch-body { display: grid; grid-template-columns: minmax(240px, 360px) 1fr; gap: 14px; align-items: start; }
.diagram { max-height: 720px; overflow: auto; border: 1px solid #f1f5f9; } .diagram svg { max-width: 100%; height: auto; }
pre { background: #0f172a; color: #e2e8f0; padding: 10px; border-radius: 4px; overflow: auto; max-height: 520px; font-size: 12px; }
a { color: #1d4ed8; }
`;

function cell(row: CycleTableRow, key: keyof CycleTableRow): string {
  const value = row[key];
  if (key === 'finished') return value ? 'yes' : 'running';
  if (typeof value === 'number' && key.endsWith('Pct')) return value.toFixed(2);
  return value === null ? '—' : esc(String(value));
}

export function renderTable(rows: readonly CycleTableRow[]): string {
  const head = TABLE_COLUMNS.map((column) => `<th scope="col">${esc(column.title)}</th>`).join('');
  const body = rows
    .map((row) => {
      const cells = TABLE_COLUMNS.map((column) => `<td>${cell(row, column.key)}</td>`).join('');
      return `<tr class="${row.finished ? 'finished' : 'unfinished'}" data-cycle="${row.cycle}">${cells}</tr>`;
    })
    .join('\n');
  return `<table class="cycles" id="cycle-table"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function stat(label: string, value: string, note = ''): string {
  return `<div class="stat"><small>${esc(label)}</small><b>${esc(value)}</b>${note ? `<small>${esc(note)}</small>` : ''}</div>`;
}

function renderSummary(s: RunSummary): string {
  const trend = (a: number | null, b: number | null) => `${formatPct(a)} → ${formatPct(b)}`;
  return `<div class="summary" id="summary">
${stat('Valid rate, all cycles', formatPct(s.validPct), `95 % CI ${formatPct(s.validLowPct)} – ${formatPct(s.validHighPct)}; ${s.valid}/${s.sampled}`)}
${stat('Peak valid rate', s.peakValid ? formatPct(s.peakValid.pct) : '—', s.peakValid ? `cycle ${s.peakValid.cycle}` : '')}
${stat('Mean accuracy, first → last cycle', trend(s.firstMeanPct, s.lastMeanPct))}
${stat('Share ≥ 40 %, first → last cycle', trend(s.firstAbove40Pct, s.lastAbove40Pct))}
${stat('Best accuracy', formatPct(s.bestPct))}
${stat('Novel architectures admitted', String(s.admitted), `${s.cycles} cycles`)}
</div>`;
}

const VERDICTS: Record<Verdict, string> = {
  better: 'better: the 95 % intervals do not overlap',
  worse: 'worse: the 95 % intervals do not overlap',
  'not distinguishable': 'not distinguishable: the 95 % intervals overlap (more samples would tell)',
  'not measured': 'not measured',
};

function renderSeedComparison(measured: SeedComparison): string {
  const row = (name: string, outcome: PairedOutcome) =>
    `<tr><td>${esc(name)}</td><td>${esc(formatRate(outcome.a))}</td><td>${esc(formatRate(outcome.b))}</td><td>${outcome.bOnly} / ${outcome.aOnly}</td><td>${esc(formatPValue(outcome.pValue))}</td><td>${esc(outcome.verdict)}</td></tr>`;
  const dominant = measured.dominantFailure
    ? ` Dominant first failure (${esc(measured.dominantFailure.failureClass)}): ${measured.dominantFailure.a} → ${measured.dominantFailure.b}.`
    : '';
  return `<h3>The seed adapter against the base model, measured before the run</h3>
<table class="learning" id="seed-comparison">
<thead><tr><th>n = ${measured.samples} paired samples (same prompts, same seeds)</th><th>${esc(measured.a.label)}</th><th>${esc(measured.b.label)}</th><th>better / worse pairs</th><th>exact McNemar</th><th>verdict</th></tr></thead>
<tbody>
${row('valid at the first attempt', measured.firstAttempt)}
${row('valid after repair', measured.afterRepair)}
${row('novel and valid', measured.novelValid)}
</tbody>
</table>
<p class="meta">Measured with <code>archloop compare base seed</code> and carried by the cached seed adapter.${dominant}</p>`;
}

function renderLearning(comparison: LearningComparison): string {
  const measured = comparison.seedComparison ? renderSeedComparison(comparison.seedComparison) : '';
  if (comparison.points.length === 0) return `${measured}<p class="meta">Nothing measured in this run yet: the first cycle has not finished.</p>`;
  const rows = comparison.points
    .map((p) => `<tr data-cycle="${p.cycle}"><td>${esc(p.label)}</td><td>${esc(formatRate(p.validFirst))}</td><td>${esc(formatRate(p.validAfterRepair))}</td><td>${p.meanAccuracy === null ? '—' : formatPct(percent(p.meanAccuracy))}</td></tr>`)
    .join('\n');
  const seedVerdict = comparison.seedVsBasePaired ? `paired on this run's prompts and seeds: ${describePaired(comparison.seedVsBasePaired)}` : VERDICTS[comparison.seedVsBase];
  return `${measured}<h3>In this run</h3>
<table class="learning" id="learning">
<thead><tr><th>model</th><th>valid at the first attempt (95 % CI)</th><th>valid after repair (95 % CI)</th><th>mean accuracy</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p class="meta" id="verdicts">Seed fine-tune against the base model: ${esc(seedVerdict)}. Last cycle against cycle 1 (unpaired: their prompts differ): ${esc(VERDICTS[comparison.lastVsFirst])}.</p>`;
}

function renderFigure(figure: FigureView): string {
  const note = figure.empty ? ' — no data yet' : '';
  return `<figure class="chart" id="fig-${esc(figure.name)}" data-chart="${esc(figure.name)}">
${figure.svg}
<figcaption>${esc(figure.title)}${note} · <a href="${esc(figure.svgFile)}">SVG</a> · <a href="${esc(figure.pngFile)}">PNG</a></figcaption>
</figure>`;
}

function link(label: string, file: string | null): string {
  return file ? ` · <a href="${esc(file)}">${esc(label)}</a>` : '';
}

function renderArchitecture(a: ArchitectureView): string {
  const diagram = a.diagramSvg ?? '<p class="meta">No diagram: the graph IR holds nothing drawable.</p>';
  const code = a.code === null ? '<p class="meta">No code stored.</p>' : `<pre><code>${esc(a.code)}</code></pre>`;
  return `<article class="arch" id="arch-${a.rank}" data-candidate="${a.candidateId}">
<h3>#${a.rank} · ${formatPct(a.accuracyPct)} · cycle ${a.cycle}, sample ${a.sampleIndex}</h3>
<p class="meta"><span>accuracy ${formatPct(a.accuracyPct)}</span><span>parameters ${formatCount(a.params)}</span><span>FLOPs ${formatCount(a.flops)}</span><span>status ${esc(a.status)}</span><span>candidate ${a.candidateId}</span>${link('diagram SVG', a.files.svg)}${link('diagram PNG', a.files.png)}${link('code', a.files.code)}</p>
<div class="arch-body"><div class="diagram">${diagram}</div><div class="code">${code}</div></div>
</article>`;
}

export function renderPage(model: PageModel): string {
  const { run } = model;
  const title = `archloop report — ${run.name} (${run.id})`;
  const architectures = model.architectures.length
    ? model.architectures.map(renderArchitecture).join('\n')
    : '<p class="meta">No valid, trained candidate yet.</p>';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${esc(run.name)}</h1>
<p class="meta"><span>run <code>${esc(run.id)}</code></span><span>preset ${esc(run.preset)}</span><span>status ${esc(run.status)}</span><span>dataset ${esc(run.dataset ?? '—')}</span><span>model ${esc(run.model ?? '—')}</span><span>started ${esc(run.createdAt.toISOString())}</span>${run.finishedAt ? `<span>finished ${esc(run.finishedAt.toISOString())}</span>` : ''}<span>report generated ${esc(model.generatedAt.toISOString())}</span></p>
<h2>Did it learn?</h2>
${renderLearning(model.learning)}
${model.fineTunes.length ? `<h3>Fine-tunes</h3>\n<ul class="meta" id="fine-tunes">${model.fineTunes.map((line) => `<li>${esc(line)}</li>`).join('')}</ul>` : ''}
${renderSummary(model.summary)}
<h2>Per-cycle results</h2>
${renderTable(model.rows)}
<p class="meta">Valid % is the share of sampled programs that passed validation; Best, Mean and ≥40 % are over candidates trained for one epoch; Unique counts novel architectures admitted to the corpus; Total train prompts is the corpus size for the next fine-tune. Download: <a href="${esc(model.files.csv)}">CSV</a> · <a href="${esc(model.files.json)}">JSON</a></p>
<h2>Figures</h2>
<div class="charts">
${model.figures.map(renderFigure).join('\n')}
</div>
<h2>Top architectures</h2>
${architectures}
</main>
</body>
</html>
`;
}
