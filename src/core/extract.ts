/**
 * Pulls the program out of an LLM completion. Completions wrap code in prose, use several
 * fences (a snippet, then the full file), forget the closing fence, label fences oddly, or
 * stop mid-program when they hit the token limit. Every outcome is either code or a
 * classified failure, never an exception.
 *
 * Choice among fenced blocks: a block defining `class Net` beats one that does not; a
 * complete block beats one cut off by the token limit; then the longest wins.
 */

/** `unchanged`: a repair that returned the program it was asked to fix (src/activities/repair.ts). */
export type ExtractFailureClass = 'empty-completion' | 'no-code' | 'truncated' | 'unchanged';

export type CodeSource = 'fence' | 'unclosed-fence' | 'unfenced';

export type Extraction =
  | { ok: true; code: string; source: CodeSource; language: string }
  | { ok: false; failureClass: ExtractFailureClass; message: string };

export interface FencedBlock {
  /** First word of the info string, lower-cased ('' when unlabelled). */
  language: string;
  code: string;
  closed: boolean;
}

// Every pattern here is linear in the line length: no two adjacent quantifiers can match
// the same characters (`[ \t]*([^\s`]*)[^`]*$` could, and took 5.4 s on one 100k-char line).
const OPENING = /^( {0,3})(`{3,}|~{3,})([^`]*)$/;
const CLOSING = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;
const PYTHON_LANGUAGES = new Set(['python', 'python3', 'py', 'py3', 'pytorch', 'torch', 'ipython']);
const DEFINES_NET = /^[ \t]*class[ \t]+Net\b/m;
const LOOKS_LIKE_PYTHON = /^[ \t]*(import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import\b|def[ \t]+\w|class[ \t]+\w)/m;

/** Fenced code blocks in document order (CommonMark rules for fence lines). */
export function fencedBlocks(text: string): FencedBlock[] {
  const lines = text.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPENING.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    const language = /^[^\s]*/.exec(info.replace(/^[ \t]+/, ''))![0];
    const body: string[] = [];
    let closed = false;
    for (i++; i < lines.length; i++) {
      const close = CLOSING.exec(lines[i]!);
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length) {
        closed = true;
        break;
      }
      body.push(stripIndent(lines[i]!, indent.length));
    }
    blocks.push({ language: language.toLowerCase(), code: body.join('\n'), closed });
  }
  return blocks;
}

function stripIndent(line: string, width: number): string {
  let n = 0;
  while (n < width && line[n] === ' ') n++;
  return line.slice(n);
}

function isPython(block: FencedBlock): boolean {
  if (PYTHON_LANGUAGES.has(block.language)) return true;
  return block.language === '' && LOOKS_LIKE_PYTHON.test(block.code);
}

// Lines that can continue a top-level Python program; the first other line (prose) ends it.
const CODE_START = /^(import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import\b|class[ \t]+\w|def[ \t]+\w|@\w)/;
const CODE_LINE =
  /^([ \t]|#|$|(import|from|class|def|if|elif|else|for|while|try|except|finally|with|return|raise|assert|async|print)\b|@\w|[A-Za-z_][\w.]*(\[[^\]]*\])?[ \t]*(=|\+=|-=|\(|:)|[)\]}])/;

/** Code written without fences: from the first import/def/class line to the first prose line. */
export function unfencedCode(text: string): { code: string; reachesEnd: boolean } | undefined {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => CODE_START.test(line));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && CODE_LINE.test(lines[end]!)) end++;
  const code = lines.slice(start, end).join('\n');
  return DEFINES_NET.test(code) ? { code, reachesEnd: end === lines.length } : undefined;
}

interface Ranked {
  block: FencedBlock;
  definesNet: boolean;
  complete: boolean;
}

function better(a: Ranked, b: Ranked): Ranked {
  if (a.definesNet !== b.definesNet) return a.definesNet ? a : b;
  if (a.complete !== b.complete) return a.complete ? a : b;
  return b.block.code.length >= a.block.code.length ? b : a;
}

function normalize(code: string): string {
  return `${code.trimEnd()}\n`; // not /\s+$/: quadratic on long inner runs of whitespace
}

export function extractCode(completion: string, finishReason?: string | null): Extraction {
  const text = completion.replace(/\r\n?/g, '\n');
  const hitLimit = finishReason === 'length';
  if (text.trim() === '') {
    return { ok: false, failureClass: 'empty-completion', message: 'the completion is empty' };
  }
  const blocks = fencedBlocks(text).filter((block) => block.code.trim() !== '');
  const candidates = blocks
    .map((block) => ({ block, definesNet: DEFINES_NET.test(block.code), complete: block.closed || !hitLimit }))
    .filter((ranked) => ranked.definesNet || isPython(ranked.block));
  if (candidates.length > 0) {
    const best = candidates.reduce(better);
    if (!best.complete) {
      return { ok: false, failureClass: 'truncated', message: 'the token limit cut the program off inside its code block' };
    }
    const source = best.block.closed ? 'fence' : 'unclosed-fence';
    return { ok: true, code: normalize(best.block.code), source, language: best.block.language };
  }
  const raw = blocks.length === 0 ? unfencedCode(text) : undefined;
  if (raw !== undefined) {
    if (hitLimit && raw.reachesEnd) return { ok: false, failureClass: 'truncated', message: 'the token limit cut the unfenced program off' };
    return { ok: true, code: normalize(raw.code), source: 'unfenced', language: '' };
  }
  if (hitLimit) return { ok: false, failureClass: 'truncated', message: 'the token limit was reached before any code' };
  return { ok: false, failureClass: 'no-code', message: 'no Python code block and no unfenced program defining class Net' };
}
