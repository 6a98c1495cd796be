/**
 * A total lexer for Python source: it never throws, so even a broken program yields
 * tokens. Indentation and other whitespace are dropped (they carry no structure the
 * token stream does not); logical line ends are kept as `newline` so statements, and
 * with them docstrings, can be recognised.
 */

export type TokenKind = 'name' | 'number' | 'string' | 'op' | 'comment' | 'newline';

export interface Token {
  kind: TokenKind;
  text: string;
}

const digits = String.raw`\d(?:_?\d)*`;
const exponent = String.raw`[eE][+-]?${digits}`;
const pointFloat = String.raw`(?:${digits})?\.${digits}|${digits}\.`;
const NUMBER = new RegExp(
  String.raw`0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:(?:${pointFloat})(?:${exponent})?|${digits}${exponent}|${digits})[jJ]?`,
  'y',
);
const NAME = /[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*/uy;
const STRING_START = /([rRbBuUfFtT]{0,2})('''|"""|'|")/y;
const OPERATOR =
  /\*\*=|\/\/=|>>=|<<=|\.\.\.|->|:=|\*\*|\/\/|<<|>>|<=|>=|==|!=|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|@=|[-+*\/%@&|^~<>()\[\]{},:;.=!]/y;
const BLANK = /[ \t\f]+|\\\r?\n/y;
const COMMENT = /#[^\r\n]*/y;
const NEWLINE = /\r?\n|\r/y;

function matchAt(pattern: RegExp, source: string, position: number): RegExpExecArray | null {
  pattern.lastIndex = position;
  return pattern.exec(source);
}

/** End index (exclusive) of a string literal whose body starts at `position`. */
function stringEnd(source: string, position: number, quote: string): number {
  const triple = quote.length === 3;
  let i = position;
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === '\\') {
      i += 2;
      continue;
    }
    if (!triple && (ch === '\n' || ch === '\r')) return i; // unterminated: stop at the line end
    if (source.startsWith(quote, i)) return i + quote.length;
    i++;
  }
  return source.length;
}

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let position = 0;
  const push = (kind: TokenKind, text: string) => tokens.push({ kind, text });
  while (position < source.length) {
    let match: RegExpExecArray | null;
    if ((match = matchAt(BLANK, source, position))) {
      position += match[0].length;
    } else if ((match = matchAt(NEWLINE, source, position))) {
      if (depth === 0 && tokens.length && tokens[tokens.length - 1]!.kind !== 'newline') push('newline', '\n');
      position += match[0].length;
    } else if ((match = matchAt(COMMENT, source, position))) {
      push('comment', match[0]);
      position += match[0].length;
    } else if ((match = matchAt(STRING_START, source, position))) {
      const end = stringEnd(source, position + match[0].length, match[2]!);
      push('string', source.slice(position, end));
      position = end;
    } else if ((match = matchAt(NUMBER, source, position))) {
      push('number', match[0]);
      position += match[0].length;
    } else if ((match = matchAt(NAME, source, position))) {
      push('name', match[0]);
      position += match[0].length;
    } else {
      const text = matchAt(OPERATOR, source, position)?.[0] ?? String.fromCodePoint(source.codePointAt(position)!);
      if ('([{'.includes(text)) depth++;
      else if (')]}'.includes(text)) depth = Math.max(0, depth - 1);
      push('op', text);
      position += text.length;
    }
  }
  if (tokens.length && tokens[tokens.length - 1]!.kind !== 'newline') push('newline', '\n');
  return tokens;
}
