import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attrsLine, diagramFromIr, diagramToDot, dotString } from '../../src/report/graph-ir';
import { loadDotRenderer } from '../../src/report/render';
import { inlineSvg, scopeSvgIds, stripProlog } from '../../src/report/svg';
import { node } from './fake-run';

const runnerForm = {
  method: 'fx',
  nodes: [
    node('placeholder', 'x', [], [1, 3, 32, 32]),
    node('call_module', 'Conv2d', [0], [1, 16, 32, 32], { out_channels: 16, kernel_size: [3, 3], padding_mode: 'zeros' }),
    node('call_function', 'relu', [1]),
  ],
  output: [2],
};

const label = (d: ReturnType<typeof diagramFromIr>, id: string) => d!.nodes.find((n) => n.id === id)?.label;

describe('graph IR → diagram', () => {
  it("reads the runner's form: index inputs, attributes, shapes and a separate output list", () => {
    const d = diagramFromIr(runnerForm)!;
    assert.deepEqual(d.edges, [
      ['n0', 'n1'],
      ['n1', 'n2'],
      ['n2', 'output'],
    ]);
    assert.equal(label(d, 'n0'), 'input\n[1×3×32×32]');
    assert.equal(label(d, 'n1'), 'Conv2d\nout_channels=16 kernel_size=3×3\n[1×16×32×32]');
    assert.equal(d.nodes.find((n) => n.id === 'output')?.kind, 'output');
  });

  it('draws a join once per input and drops duplicate and self edges', () => {
    const d = diagramFromIr({ method: 'fx', nodes: [node('placeholder', 'x', []), node('call_function', 'add', [0, 0, 1])], output: [1] })!;
    assert.deepEqual(d.edges, [
      ['n0', 'n1'],
      ['n1', 'output'],
    ]);
  });

  it('returns null for anything that is not a graph IR with nodes (one schema: src/core/sandbox.ts)', () => {
    const fxNamed = { nodes: [{ name: 'x', op: 'placeholder', target: 'x', args: [] }] };
    for (const ir of [null, 'text', {}, { method: 'fx', nodes: [], output: [] }, fxNamed, { method: 'fx', nodes: [{ op: 'x' }], output: [] }]) {
      assert.equal(diagramFromIr(ir), null);
    }
  });

  it('caps large graphs and says how many nodes it left out', () => {
    const nodes = Array.from({ length: 10 }, (_, i) => node('call_function', 'relu', i ? [i - 1] : []));
    const d = diagramFromIr({ method: 'fx', nodes, output: [9] }, 4)!;
    assert.equal(d.nodes.length, 4); // the output is among the nodes left out: no sink
    assert.equal(d.omitted, 6);
    assert.equal(d.edges.length, 3);
    assert.match(diagramToDot(d), /… 6 more nodes/);
  });

  it('keeps attribute lines short', () => {
    const line = attrsLine({ a_very_long_attribute_name: 123456, another_long_one: 7, third: [1, 2] });
    assert.ok(line.length <= 34);
    assert.ok(line.endsWith('…'));
    assert.equal(attrsLine({ text: 'ignored', nested: { x: 1 } }), '');
  });

  it('escapes DOT strings and lays the diagram out with Graphviz', async () => {
    assert.equal(dotString('a"b\\c\nd'), '"a\\"b\\\\c\\nd"');
    const svg = (await loadDotRenderer()).toSvg(diagramToDot(diagramFromIr(runnerForm)!));
    assert.match(svg, /<svg/);
    for (const text of ['input', 'Conv2d', 'relu', 'output']) assert.ok(svg.includes(`>${text}</text>`), text);
  });
});

describe('inlining SVG', () => {
  const doc = `<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n<!-- made by a tool -->\n<svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"><use xlink:href="#clip1"/><use href="#clip1"/></g></svg>`;

  it('drops the prolog, doctype and comments', () => {
    assert.ok(stripProlog(doc).startsWith('<svg>'));
    assert.ok(!stripProlog(doc).includes('made by a tool'));
  });

  it('prefixes ids and every local reference so figures do not clash', () => {
    const scoped = scopeSvgIds(doc, 'fig-a');
    assert.ok(scoped.includes('id="fig-a-clip1"'));
    assert.ok(scoped.includes('url(#fig-a-clip1)'));
    assert.ok(scoped.includes('xlink:href="#fig-a-clip1"'));
    assert.ok(scoped.includes(' href="#fig-a-clip1"'));
    assert.ok(!/"#clip1"|\(#clip1\)|id="clip1"/.test(scoped));
    assert.ok(inlineSvg(doc, 'x').startsWith('<svg>'));
  });
});
