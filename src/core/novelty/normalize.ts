/**
 * Normalized tokens of a Python program: comments and docstrings stripped, whitespace
 * ignored, identifiers -> ID except keywords and PyTorch API names, numbers -> NUM,
 * strings -> STR (each switch configurable). Two programs that differ only in naming,
 * constants or comments normalize to the same token stream.
 */
import { PYTHON_KEYWORDS, TORCH_METHODS } from './python-names';
import { tokenize, type Token } from './tokenize';

export interface NormalizeOptions {
  identifiers: boolean;
  numbers: boolean;
  strings: boolean;
}

export const DEFAULT_NORMALIZE: NormalizeOptions = { identifiers: true, numbers: true, strings: true };

/** Splits tokens into statements (logical lines and `;`-separated parts), comments dropped. */
function statements(tokens: readonly Token[]): Token[][] {
  const out: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  for (const token of tokens) {
    if (token.kind === 'comment') continue;
    if (token.kind === 'op' && '([{'.includes(token.text)) depth++;
    if (token.kind === 'op' && ')]}'.includes(token.text)) depth = Math.max(0, depth - 1);
    const ends = token.kind === 'newline' || (token.kind === 'op' && token.text === ';' && depth === 0);
    if (ends) {
      if (current.length) out.push(current);
      current = [];
    } else {
      current.push(token);
    }
  }
  if (current.length) out.push(current);
  return out;
}

/** A statement made only of string literals: a docstring, or a string used as a comment. */
function isDocstring(statement: readonly Token[]): boolean {
  return statement.every((token) => token.kind === 'string');
}

/**
 * Local names bound to torch modules or members by the program's imports:
 * `import torch.nn as nn` -> nn, `from torch.nn import functional as F, Conv2d` -> F, Conv2d.
 */
export function torchImportAliases(statementsOfProgram: readonly Token[][]): Set<string> {
  const aliases = new Set<string>(['torch']);
  for (const statement of statementsOfProgram) {
    const texts = statement.map((token) => token.text);
    if (texts[0] === 'import') {
      for (const clause of splitOnCommas(texts.slice(1))) {
        if (clause[0] !== 'torch') continue;
        const as = clause.indexOf('as');
        aliases.add(as >= 0 && clause[as + 1] ? clause[as + 1]! : clause[0]);
      }
    } else if (texts[0] === 'from' && texts[1] === 'torch') {
      const importAt = texts.indexOf('import');
      if (importAt < 0) continue;
      const names = texts.slice(importAt + 1).filter((text) => text !== '(' && text !== ')');
      for (const clause of splitOnCommas(names)) {
        const as = clause.indexOf('as');
        // Both the torch member's own name and its local alias are PyTorch names.
        for (const name of [clause[0], as >= 0 ? clause[as + 1] : undefined]) {
          if (name && name !== '*') aliases.add(name);
        }
      }
    }
  }
  return aliases;
}

function splitOnCommas(texts: readonly string[]): string[][] {
  const clauses: string[][] = [[]];
  for (const text of texts) {
    if (text === ',') clauses.push([]);
    else clauses[clauses.length - 1]!.push(text);
  }
  return clauses.filter((clause) => clause.length > 0);
}

/** Normalizes one statement; `torchChain` tracks `torch.nn.functional.relu`-style attribute chains. */
function normalizeStatement(statement: readonly Token[], aliases: ReadonlySet<string>, options: NormalizeOptions): string[] {
  const out: string[] = [];
  let previous: Token | undefined;
  let receiverIsTorch = false;
  for (const token of statement) {
    const afterDot = previous?.kind === 'op' && previous.text === '.';
    if (token.kind === 'name') {
      const isTorch: boolean = afterDot ? receiverIsTorch : aliases.has(token.text);
      const keep =
        !options.identifiers || PYTHON_KEYWORDS.has(token.text) || isTorch || (afterDot && TORCH_METHODS.has(token.text));
      out.push(keep ? token.text : 'ID');
      receiverIsTorch = isTorch;
    } else {
      if (token.kind === 'number') out.push(options.numbers ? 'NUM' : token.text);
      else if (token.kind === 'string') out.push(options.strings ? 'STR' : token.text);
      else out.push(token.text);
      if (!(token.kind === 'op' && token.text === '.')) receiverIsTorch = false;
    }
    previous = token;
  }
  return out;
}

export function normalizedTokens(source: string, options: NormalizeOptions = DEFAULT_NORMALIZE): string[] {
  const program = statements(tokenize(source)).filter((statement) => !isDocstring(statement));
  const aliases = torchImportAliases(program);
  return program.flatMap((statement) => normalizeStatement(statement, aliases, options));
}
