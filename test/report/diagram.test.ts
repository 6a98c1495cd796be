import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attrsLine, diagramFromIr, diagramToDot, dotString } from '../../src/report/graph-ir';
import { loadDotRenderer } from '../../src/report/render';
import { inlineSvg, scopeSvgIds, stripProlog } from '../../src/report/svg';

const runnerForm = {
  method: 'fx',
  nodes: [
    { op: 'placeholder', target: 'x', inputs: [], shape: [1, 3, 32, 32] },
    { op: 'call_module', target: 'Conv2d', attrs: { out_channels: 16, kernel_size: [3, 3], padding_mode: 'zeros' }, inputs: [0], shape: [1, 16, 32, 32] },
    { op: 'call_function', target: 'relu', inputs: [1] },
  ],
  output: [2],
};

const fxForm = {
  nodes: [
    { name: 'x', op: 'placeholder', target: 'x', args: [] },
    { name: 'conv', op: 'call_module', target: 'Conv2d', args: ['x'] },
    { name: 'add', op: 'call_function', target: 'add', args: ['x', 'conv'] },
    { name: 'flat', op: 'call_function', target: 'flatten', args: ['add', 1] },
    { unexpected: true },
    { name: 'output', op: 'output', target: 'output', args: [['flat']] },
  ],
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

  it("reads fx's form: name references, literal numbers are not edges, unreadable nodes are skipped", () => {
    const d = diagramFromIr(fxForm)!;
    assert.equal(d.nodes.length, 5);
    assert.deepEqual(d.edges, [
      ['n0', 'n1'],
      ['n0', 'n2'],
      ['n1', 'n2'],
      ['n2', 'n3'],
      ['n3', 'n5'],
    ]);
    assert.equal(d.nodes.filter((n) => n.kind === 'output').length, 1);
  });

  it('takes an explicit edge list and drops duplicate, self and dangling edges', () => {
    const d = diagramFromIr({
      nodes: [{ op: 'placeholder' }, { target: 'Linear' }],
      edges: [[0, 1], { source: 0, target: 1 }, [1, 1], [1, 7], 'junk'],
    })!;
    assert.deepEqual(d.edges, [['n0', 'n1']]);
  });

  it('returns null when nothing is drawable', () => {
    for (const ir of [null, 'text', {}, { nodes: [] }, { nodes: [{}, 3, { shape: [1] }] }]) assert.equal(diagramFromIr(ir), null);
  });

  it('caps large graphs and says how many nodes it left out', () => {
    const nodes = Array.from({ length: 10 }, (_, i) => ({ op: 'call_function', target: 'relu', inputs: i ? [i - 1] : [] }));
    const d = diagramFromIr({ nodes, output: [9] }, 4)!;
    assert.equal(d.nodes.length, 4);
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
