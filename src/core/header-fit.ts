/**
 * A program rewritten to continue a prefilled header (prompts/<name>.reply.md): the model is
 * sampled with the header already written, so a fine-tune pair must show the header verbatim
 * and then what the model writes after it. A seed program (LEMUR's own layout) or a repair
 * that rewrote the file is fitted deterministically: its `Net.__init__` body goes after the
 * header's, its other members follow, and whatever the header already defines (imports,
 * `supported_hyperparameters`, the training methods) is the header's; the program's other
 * module-level code (helper blocks, constants, imports the header lacks) follows the class.
 * A program the header cannot continue (Net declared otherwise, another `__init__`
 * signature, another indentation) does not fit and is left out by the caller, counted.
 *
 * Why lines and indentation rather than a Python parser: this runs in the pure pair builder
 * (TypeScript), on programs that already validated in the sandbox, so they are well-formed
 * Python; only the top-level and class-level block boundaries matter, and indentation gives
 * them. Anything unusual at those levels is reported as not fitting, never guessed.
 */
import { fencePython } from './prompts';

export type HeaderFit = { ok: true; code: string; rewritten: boolean } | { ok: false; reason: string };

interface Block {
  /** The first line, trimmed (a decorator's block starts at the decorator). */
  head: string;
  lines: string[];
}

const indentOf = (line: string) => line.length - line.trimStart().length;
const isBlank = (line: string) => line.trim() === '' || line.trimStart().startsWith('#');

/** Statements at exactly `indent`, each with the deeper lines that follow it. */
function blocksAt(lines: readonly string[], indent: number): Block[] {
  const blocks: Block[] = [];
  let decorated = false;
  for (const line of lines) {
    const starts = !isBlank(line) && indentOf(line) === indent && !/^\s*[)\]}]/.test(line);
    if (starts && !decorated) blocks.push({ head: line.trim(), lines: [line] });
    else if (blocks.length) blocks[blocks.length - 1]!.lines.push(line);
    else if (!isBlank(line)) blocks.push({ head: line.trim(), lines: [line] });
    if (starts) decorated = line.trim().startsWith('@');
  }
  return blocks;
}

function defName(block: Block): string | null {
  const def = block.lines.map((line) => line.trim()).find((line) => !line.startsWith('@'));
  return /^(?:async\s+)?(?:def|class)\s+(\w+)/.exec(def ?? '')?.[1] ?? null;
}

/** Names an import statement binds, each to the module path it stands for. */
function importBindings(statement: string): Map<string, string> | null {
  const bindings = new Map<string, string>();
  const text = statement.replace(/[()\\\n]/g, ' ').replace(/\s+/g, ' ').trim();
  const from = /^from ([\w.]+) import (.+)$/.exec(text);
  if (from) {
    for (const part of from[2]!.split(',')) {
      const [name, alias] = part.trim().split(/\s+as\s+/);
      if (!name || name === '*') return null;
      bindings.set(alias ?? name, `${from[1]}.${name}`);
    }
    return bindings;
  }
  const plain = /^import (.+)$/.exec(text);
  if (!plain) return null;
  for (const part of plain[1]!.split(',')) {
    const [path, alias] = part.trim().split(/\s+as\s+/);
    if (!path) return null;
    if (alias) bindings.set(alias, path);
    else bindings.set(path.split('.')[0]!, path.split('.')[0]!);
  }
  return bindings;
}

const isImport = (head: string) => /^(import|from)\s/.test(head);

function paramNames(defLine: string): string[] | null {
  const params = /^def\s+\w+\s*\((.*)\)\s*(->.*)?:$/.exec(defLine.trim())?.[1];
  return params === undefined ? null : params.split(',').map((p) => p.split(/[:=]/)[0]!.trim()).filter(Boolean);
}

interface ModuleBlock {
  block: Block;
  /** What an import binds (name → module path); null for other statements. */
  bindings: Map<string, string> | null;
  /** The def/class name, if the block is one. */
  name: string | null;
}

interface Parsed {
  imports: Map<string, string>;
  /** Module-level def/class names other than Net. */
  defs: Set<string>;
  /** Module-level statements other than Net, in order. */
  blocks: ModuleBlock[];
  net: Block | undefined;
}

function parse(lines: readonly string[]): Parsed | string {
  const parsed: Parsed = { imports: new Map(), defs: new Set(), blocks: [], net: undefined };
  for (const block of blocksAt(lines, 0)) {
    const name = defName(block);
    if (name === 'Net') {
      parsed.net = block;
      continue;
    }
    let bindings: Map<string, string> | null = null;
    if (isImport(block.head)) {
      bindings = importBindings(block.lines.join('\n'));
      if (!bindings) return `an import the header cannot hold: ${block.head}`;
      for (const [bound, path] of bindings) parsed.imports.set(bound, path);
    } else if (name) parsed.defs.add(name);
    parsed.blocks.push({ block, bindings, name });
  }
  return parsed;
}

/** The class body's members (at the body's indentation) and that indentation. */
function members(net: Block): { indent: number; blocks: Block[] } | null {
  const body = net.lines.slice(1);
  const first = body.find((line) => !isBlank(line));
  if (!first) return null;
  return { indent: indentOf(first), blocks: blocksAt(body, indentOf(first)) };
}

/** Fits `code` to continue `header` (the prefill's code, without its opening fence). */
export function fitToHeader(code: string, header: string): HeaderFit {
  if (code.startsWith(header)) return { ok: true, code, rewritten: false };
  const headerLines = header.replace(/\n$/, '').split('\n');
  const want = parse(headerLines);
  const have = parse(code.replace(/\r\n?/g, '\n').split('\n'));
  if (typeof want === 'string') return { ok: false, reason: `the header: ${want}` };
  if (typeof have === 'string') return { ok: false, reason: have };
  if (!want.net || !have.net) return { ok: false, reason: want.net ? 'no class Net' : 'the header does not open class Net' };
  if (have.net.head !== want.net.head) return { ok: false, reason: `class Net is declared as \`${have.net.head}\`, the header has \`${want.net.head}\`` };
  const wantMembers = members(want.net);
  const haveMembers = members(have.net);
  const open = wantMembers?.blocks.at(-1);
  if (!wantMembers || !open || defName(open) !== '__init__') return { ok: false, reason: 'the header does not end inside Net.__init__' };
  if (!haveMembers || haveMembers.indent !== wantMembers.indent) return { ok: false, reason: 'class Net is indented differently from the header' };
  const init = haveMembers.blocks.find((block) => defName(block) === '__init__');
  if (!init) return { ok: false, reason: 'class Net has no __init__' };
  const wantParams = paramNames(open.head);
  if (!wantParams || JSON.stringify(paramNames(init.head)) !== JSON.stringify(wantParams)) {
    return { ok: false, reason: `__init__ takes other parameters than (${wantParams?.join(', ')})` };
  }

  // The header's __init__ lines are written already; super().__init__() in any spelling too.
  const written = new Set(open.lines.slice(1).map((line) => line.trim()).filter(Boolean));
  const bodyIndent = indentOf(open.lines.slice(1).find((line) => !isBlank(line)) ?? '');
  const initBody = init.lines.slice(1);
  if (initBody.some((line) => !isBlank(line) && indentOf(line) < bodyIndent)) return { ok: false, reason: '__init__ is indented differently from the header' };
  const rest = initBody.filter((line) => !written.has(line.trim()) && !/^super\(.*\)\.__init__\(\)$/.test(line.trim()));

  const headerMembers = new Set(wantMembers.blocks.map(defName).filter((name): name is string => name !== null));
  const others = haveMembers.blocks.filter((block) => {
    const name = defName(block);
    return block !== init && !(name && headerMembers.has(name));
  });
  const trimBlank = (lines: string[]) => {
    const out = [...lines];
    while (out.length && out[out.length - 1]!.trim() === '') out.pop();
    return out;
  };
  const parts = [trimBlank(rest).join('\n'), ...others.map((block) => trimBlank(block.lines).join('\n'))].filter((part) => part.trim() !== '');
  const tail = parts.join('\n\n');
  // The program's other module-level code (helper blocks, constants, imports the header
  // lacks) follows the class, in its own order: Python resolves those names when Net is
  // built, not when it is defined. What the header already defines is the header's, and an
  // import only the replaced members used (LEMUR's `import torch.optim as optim` for its
  // own train_setup) is dropped.
  const kept = have.blocks.filter(({ bindings, name }) => (bindings ? [...bindings].some(([bound, path]) => want.imports.get(bound) !== path) : !(name && want.defs.has(name))));
  const text = (blocks: readonly ModuleBlock[]) => blocks.map(({ block }) => trimBlank(block.lines).join('\n'));
  const uses = (bound: string, within: string) => new RegExp(`(^|[^\\w.])${bound.replace(/[.]/g, '\\.')}\\b`).test(within);
  const withoutImports = [tail, ...text(kept.filter(({ bindings }) => !bindings))].join('\n');
  const after = kept.filter(({ bindings }) => !bindings || [...bindings].some(([bound, path]) => want.imports.get(bound) !== path && uses(bound, withoutImports)));
  const trailer = after.length ? `\n\n${text(after).join('\n\n\n')}\n` : '';
  const fitted = `${headerLines.join('\n')}\n${tail ? `${tail}\n` : ''}${trailer}`;
  return { ok: true, code: fitted, rewritten: true };
}

/**
 * What the model writes after `prefill` to produce `code`: with a prefill that opens a code
 * fence, the program past the header (fitted to it when needed) and the closing fence; with
 * none, the whole program in its fence. null (with the reason) when the program cannot
 * continue that prefill.
 */
export function completionAfter(prefill: string, code: string): { completion: string; rewritten: boolean } | { reason: string } {
  if (!prefill) return { completion: fencePython(code), rewritten: false };
  const open = /^```[\w+-]*\n/.exec(prefill);
  if (!open) return { reason: 'the prefill does not open a code block' };
  const fit = fitToHeader(code, prefill.slice(open[0].length));
  if (!fit.ok) return { reason: fit.reason };
  const rest = fit.code.slice(prefill.length - open[0].length).trimEnd();
  if (!rest.trim()) return { reason: 'nothing is written after the header' };
  return { completion: `${rest}\n\`\`\``, rewritten: fit.rewritten };
}
