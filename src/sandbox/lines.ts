/**
 * Splits a text stream into lines, with a cap on one line's length (the stream relays
 * untrusted output). Linear: each chunk is searched once, however long the line.
 */
export class LineSplitter {
  private parts: string[] = [];
  private pendingChars = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineChars = 64 * 1024 * 1024,
  ) {}

  push(chunk: string): void {
    let start = 0;
    let newline = chunk.indexOf('\n');
    while (newline >= 0) {
      this.emit(chunk.slice(start, newline));
      start = newline + 1;
      newline = chunk.indexOf('\n', start);
    }
    const rest = chunk.slice(start);
    if (rest) {
      this.parts.push(rest);
      this.pendingChars += rest.length;
      if (this.pendingChars > this.maxLineChars) throw new Error(`runner output line longer than ${this.maxLineChars} chars`);
    }
  }

  end(): void {
    if (this.parts.length) this.emit('');
  }

  private emit(tail: string): void {
    const line = this.parts.length ? this.parts.join('') + tail : tail;
    this.parts = [];
    this.pendingChars = 0;
    if (line.trim()) this.onLine(line);
  }
}
