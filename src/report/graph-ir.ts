/**
 * The graph IR of a candidate (written by the sandbox runner from torch.fx) turned into
 * Graphviz DOT. The IR is read tolerantly because its writer evolves separately: unknown
 * fields pass through, nodes that do not parse are skipped, edges to unknown nodes are
 * dropped, so a diagram shows whatever part of the IR is understood.
 *
 * Understood: `{ nodes: [{ name?, op?, target?, attrs?, inputs? | args?, shape? }], output?, edges? }`
 * where an input reference is a node index (the runner's form) or a node name (fx's form).
 */
import { z } from 'zod';

const Reference = z.union([z.number().int().nonnegative(), z.string()]);

/** A node must say at least what it is (op or target) or what it is called. */
export const IrNode = z
  .looseObject({
    name: z.string().min(1).optional(),
    op: z.string().min(1).optional(),
    target: z.union([z.string().min(1), z.number()]).optional(),
    attrs: z.record(z.string(), z.unknown()).optional(),
    inputs: z.array(z.unknown()).optional(),
    args: z.array(z.unknown()).optional(),
    shape: z.array(z.number()).nullable().optional(),
  })
  .refine((node) => node.op !== undefined || node.target !== undefined || node.name !== undefined, 'node says nothing drawable');
export type IrNode = z.infer<typeof IrNode>;

/** An optional explicit edge list, as pairs or {source, target}. */
const IrEdge = z.union([
  z.tuple([Reference, Reference]),
  z.looseObject({ source: Reference, target: Reference }).transform((e): [string | number, string | number] => [e.source, e.target]),
]);

export const GraphIr = z.looseObject({
  nodes: z.array(z.unknown()),
  edges: z.array(z.unknown()).optional(),
  /** Indices (or names) of the nodes that form the model's output. */
  output: z.array(Reference).optional(),
});

export interface DiagramNode {
  id: string;
  label: string;
  kind: 'input' | 'output' | 'module' | 'function';
}

export interface Diagram {
  nodes: DiagramNode[];
  edges: Array<[string, string]>;
  /** Nodes left out because the IR had more than the diagram limit. */
  omitted: number;
}

/**
 * References held by an input list, however deeply nested (fx args may be tuples). In the
 * runner's `inputs` a number is a node index; in fx's `args` numbers are literal arguments
 * (e.g. flatten's dim) and only names refer to nodes.
 */
export function references(args: readonly unknown[], numbersAreIndices: boolean): Array<string | number> {
  const found: Array<string | number> = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') found.push(value);
    else if (numbersAreIndices && typeof value === 'number' && Number.isInteger(value) && value >= 0) found.push(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object' && 'name' in value && typeof value.name === 'string') found.push(value.name);
  };
  args.forEach(visit);
  return found;
}

/** Node inputs in either form. */
function inputsOf(node: IrNode): Array<string | number> {
  return node.inputs ? references(node.inputs, true) : references(node.args ?? [], false);
}

function kindOf(op: string | undefined): DiagramNode['kind'] {
  if (op === 'placeholder' || op === 'input') return 'input';
  if (op === 'output') return 'output';
  if (op === 'call_module') return 'module';
  return 'function';
}

const MAX_LABEL_LINE = 34;

/** A few scalar attributes, e.g. `out_channels=32 kernel_size=3×3`, cut to one short line. */
export function attrsLine(attrs: Record<string, unknown> | undefined): string {
  if (!attrs) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === 'number' || typeof value === 'boolean') parts.push(`${key}=${value}`);
    else if (Array.isArray(value) && value.length <= 4 && value.every((v) => typeof v === 'number')) parts.push(`${key}=${value.join('×')}`);
  }
  const line = parts.join(' ');
  return line.length > MAX_LABEL_LINE ? `${line.slice(0, MAX_LABEL_LINE - 1)}…` : line;
}

function labelOf(node: IrNode, kind: DiagramNode['kind']): string {
  const title = kind === 'input' ? 'input' : kind === 'output' ? 'output' : String(node.target ?? node.op ?? node.name ?? '?');
  const lines = [title.length > MAX_LABEL_LINE ? `${title.slice(0, MAX_LABEL_LINE - 1)}…` : title];
  const attrs = kind === 'module' || kind === 'function' ? attrsLine(node.attrs) : '';
  if (attrs) lines.push(attrs);
  if (node.shape && node.shape.length) lines.push(`[${node.shape.join('×')}]`);
  return lines.join('\n');
}

/** The drawable part of an IR, or null when nothing in it can be drawn. */
export function diagramFromIr(ir: unknown, maxNodes = 120): Diagram | null {
  const parsed = GraphIr.safeParse(ir);
  if (!parsed.success) return null;
  // Ids stay tied to the position in the IR, so index references resolve even when a node is skipped.
  const nodes = parsed.data.nodes.flatMap((raw, index) => {
    const node = IrNode.safeParse(raw);
    return node.success ? [{ index, node: node.data, id: `n${index}` }] : [];
  });
  if (nodes.length === 0) return null;
  const kept = nodes.slice(0, maxNodes);
  const byIndex = new Map(kept.map((entry) => [entry.index, entry.id]));
  const byName = new Map(kept.flatMap((entry) => (entry.node.name ? [[entry.node.name, entry.id] as const] : [])));
  const resolve = (ref: string | number) => (typeof ref === 'number' ? byIndex.get(ref) : byName.get(ref));

  const wanted: Array<[string | number | undefined, string | number | undefined]> = [];
  for (const entry of kept) {
    for (const ref of inputsOf(entry.node)) wanted.push([resolve(ref), entry.id]);
  }
  for (const raw of parsed.data.edges ?? []) {
    const edge = IrEdge.safeParse(raw);
    if (edge.success) wanted.push([resolve(edge.data[0]), resolve(edge.data[1])]);
  }
  const diagramNodes: DiagramNode[] = kept.map((entry) => {
    const kind = kindOf(entry.node.op);
    return { id: entry.id, label: labelOf(entry.node, kind), kind };
  });
  // The runner lists outputs separately instead of as an `output` node: draw them as a sink.
  const outputs = (parsed.data.output ?? []).map(resolve).filter((id): id is string => id !== undefined);
  if (outputs.length && !diagramNodes.some((node) => node.kind === 'output')) {
    diagramNodes.push({ id: 'output', label: 'output', kind: 'output' });
    for (const id of outputs) wanted.push([id, 'output']);
  }

  const seen = new Set<string>();
  const edges: Array<[string, string]> = [];
  for (const [from, to] of wanted) {
    if (typeof from !== 'string' || typeof to !== 'string' || from === to) continue;
    const key = `${from}\u0000${to}`;
    if (!seen.has(key)) edges.push([from, to]);
    seen.add(key);
  }
  return { nodes: diagramNodes, edges, omitted: nodes.length - kept.length };
}

const STYLE: Record<DiagramNode['kind'], string> = {
  input: 'shape=oval, style=filled, fillcolor="#dbeafe"',
  output: 'shape=oval, style=filled, fillcolor="#dcfce7"',
  module: 'shape=box, style="rounded,filled", fillcolor="#fef3c7"',
  function: 'shape=box, style="rounded", fontsize=10',
};

/** A DOT string literal (Graphviz reads \n inside a quoted label as a line break). */
export function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function diagramToDot(diagram: Diagram): string {
  const lines = [
    'digraph G {',
    '  rankdir=TB; bgcolor="white";',
    '  node [fontname="DejaVu Sans", fontsize=11, margin="0.12,0.04"];',
    '  edge [color="#64748b", arrowsize=0.6];',
  ];
  for (const node of diagram.nodes) lines.push(`  ${dotString(node.id)} [label=${dotString(node.label)}, ${STYLE[node.kind]}];`);
  for (const [from, to] of diagram.edges) lines.push(`  ${dotString(from)} -> ${dotString(to)};`);
  if (diagram.omitted > 0) {
    lines.push(`  "__omitted" [label=${dotString(`… ${diagram.omitted} more nodes`)}, shape=plaintext];`);
  }
  lines.push('}');
  return lines.join('\n');
}
