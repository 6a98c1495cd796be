/** Small text formatters for the report page. */

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** `12.34 %`, or an em dash when there is no value. */
export function formatPct(value: number | null): string {
  return value === null ? '—' : `${value.toFixed(2)} %`;
}

/** 1234567 → `1.23 M`; SI prefixes, three significant digits. */
export function formatCount(value: number | null, unit = ''): string {
  if (value === null || !Number.isFinite(value)) return '—';
  const prefixes: Array<[number, string]> = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [scale, prefix] of prefixes) {
    if (Math.abs(value) >= scale) return `${(value / scale).toPrecision(3)} ${prefix}${unit}`;
  }
  return `${Number.isInteger(value) ? value : value.toPrecision(3)}${unit ? ` ${unit}` : ''}`;
}

/** A file-system-safe stem for a run id (workflow ids may hold slashes and spaces). */
export function safeStem(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'run';
}
