/**
 * The graph IR of a candidate (written by the sandbox runner from torch.fx, schema
 * `GraphIR` in src/core/sandbox.ts, the one schema every reader uses) turned into Graphviz
 * DOT: nodes with their target, a few attributes and the output shape; edges from each
 * node's input indices; the output list drawn as a sink.
 */
import { GraphIR, type GraphIR as Graph } from '../core/sandbox';

type GraphNode = Graph['nodes'][number];

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

function labelOf(node: GraphNode, kind: DiagramNode['kind']): string {
  const title = kind === 'input' ? 'input' : kind === 'output' ? 'output' : node.target || node.op;
  const lines = [title.length > MAX_LABEL_LINE ? `${title.slice(0, MAX_LABEL_LINE - 1)}…` : title];
  const attrs = kind === 'module' || kind === 'function' ? attrsLine(node.attrs) : '';
  if (attrs) lines.push(attrs);
  if (node.shape && node.shape.length) lines.push(`[${node.shape.join('×')}]`);
  return lines.join('\n');
}

/** The drawable part of an IR, or null when the stored value is not a graph IR with nodes. */
export function diagramFromIr(ir: unknown, maxNodes = 120): Diagram | null {
  const parsed = GraphIR.safeParse(ir);
  if (!parsed.success || parsed.data.nodes.length === 0) return null;
  const { nodes, output } = parsed.data;
  const kept = nodes.slice(0, maxNodes);
  const id = (index: number) => (index < kept.length ? `n${index}` : undefined);
  const diagramNodes: DiagramNode[] = kept.map((node, index) => {
    const kind = kindOf(node.op);
    return { id: `n${index}`, label: labelOf(node, kind), kind };
  });
  const wanted: Array<[string | undefined, string | undefined]> = kept.flatMap((node, index) =>
    node.inputs.map((input): [string | undefined, string | undefined] => [id(input), `n${index}`]),
  );
  // The runner lists outputs separately instead of as an `output` node: draw them as a sink.
  const outputs = output.map(id).filter((node): node is string => node !== undefined);
  if (outputs.length && !diagramNodes.some((node) => node.kind === 'output')) {
    diagramNodes.push({ id: 'output', label: 'output', kind: 'output' });
    for (const node of outputs) wanted.push([node, 'output']);
  }
  const seen = new Set<string>();
  const edges: Array<[string, string]> = [];
  for (const [from, to] of wanted) {
    if (from === undefined || to === undefined || from === to) continue;
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
