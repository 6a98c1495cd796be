/**
 * Preparing standalone SVG documents for inlining into one HTML page: the XML prolog and
 * doctype go, and element ids get a per-figure prefix, because several figures rendered
 * separately reuse the same ids (clip paths, graph nodes) and would otherwise clash.
 */

export function stripProlog(svg: string): string {
  return svg
    .replace(/<\?xml[\s\S]*?\?>/g, '')
    .replace(/<!DOCTYPE[\s\S]*?>/gi, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .trim();
}

/** Prefixes every id and every local reference to one (`url(#…)`, `href="#…"`). */
export function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}-${id})`)
    .replace(/\b((?:xlink:)?href)="#([^"]+)"/g, (_, attr: string, id: string) => `${attr}="#${prefix}-${id}"`);
}

export function inlineSvg(svg: string, prefix: string): string {
  return scopeSvgIds(stripProlog(svg), prefix);
}
