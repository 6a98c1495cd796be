/**
 * Rendering, with no browser and no network: Vega-Lite → Vega → SVG string (Vega's
 * headless SVG renderer needs no canvas), DOT → SVG with Graphviz compiled to wasm, and
 * SVG → PNG with resvg (prebuilt binary from its npm package). Vega and Graphviz ship as
 * ES modules only, hence the dynamic imports from this CommonJS package.
 */
import { Resvg } from '@resvg/resvg-js';
import type { TopLevelSpec } from 'vega-lite';

export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A Graphviz instance; loading the wasm takes a moment, so one is shared per report. */
export interface DotRenderer {
  toSvg(dot: string): string;
}

export async function loadDotRenderer(): Promise<DotRenderer> {
  const { Graphviz } = await import('@hpcc-js/wasm-graphviz');
  const graphviz = await Graphviz.load();
  return { toSvg: (dot) => graphviz.dot(dot, 'svg') };
}

export function svgToPng(svg: string, scale = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
