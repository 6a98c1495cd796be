/**
 * The config reference in the README, generated from the zod schema (its JSON Schema for
 * types and bounds) and the two presets, so the documentation cannot drift from the code.
 * `npm run docs:config` rewrites the README section; a test fails when it is stale.
 */
import { z } from 'zod';
import { buildConfig, RunConfig } from './config';

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  deprecated?: boolean;
}

function describeType(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(describeType).join(' or '); // nullable fields: `integer (> 0, ≤ 1024) or null`
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const type = Array.isArray(s.type) ? s.type.join('/') : (s.type ?? 'any');
  const bounds: string[] = [];
  if (s.exclusiveMinimum !== undefined) bounds.push(`> ${s.exclusiveMinimum}`);
  // Integers carry Number.MAX_SAFE_INTEGER as an implicit maximum: not worth printing.
  const maximum = s.maximum === Number.MAX_SAFE_INTEGER ? undefined : s.maximum;
  if (s.minimum !== undefined && maximum !== undefined) bounds.push(`${s.minimum}..${maximum}`);
  else if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  else if (maximum !== undefined) bounds.push(`≤ ${maximum}`);
  if (type === 'array' && s.items) return `array of ${describeType(s.items)}`;
  return bounds.length ? `${type} (${bounds.join(', ')})` : type;
}

function valueAt(obj: unknown, path: string[]): unknown {
  return path.reduce<unknown>((o, key) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined), obj);
}

const show = (v: unknown) => (v === undefined ? '' : `\`${JSON.stringify(v)}\``);

export function configReference(): string {
  const schema = z.toJSONSchema(RunConfig, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const paper = buildConfig('paper');
  const demo = buildConfig('demo');
  const rows: string[] = ['| field | type | `paper` | `demo` |', '|---|---|---|---|'];
  const walk = (s: JsonSchema, path: string[]) => {
    for (const [key, child] of Object.entries(s.properties ?? {})) {
      const p = [...path, key];
      if (child.deprecated) continue; // accepted for old runs, does nothing: not documented as a setting
      if (child.properties) walk(child, p);
      else rows.push(`| \`${p.join('.')}\` | ${describeType(child)} | ${show(valueAt(paper, p))} | ${show(valueAt(demo, p))} |`);
    }
  };
  walk(schema, []);
  return rows.join('\n');
}

export const README_MARKERS = ['<!-- config-reference:start -->', '<!-- config-reference:end -->'] as const;

/** The README with its config-reference section replaced by the generated one. */
export function withConfigReference(readme: string): string {
  const [start, end] = README_MARKERS;
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README has no ${start} … ${end} section`);
  return `${readme.slice(0, i + start.length)}\n${configReference()}\n${readme.slice(j)}`;
}

if (require.main === module) {
  const fs = require('node:fs') as typeof import('node:fs');
  const file = process.argv[2] ?? 'README.md';
  fs.writeFileSync(file, withConfigReference(fs.readFileSync(file, 'utf8')));
}
