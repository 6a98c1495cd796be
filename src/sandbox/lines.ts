/** Splits a byte stream into lines, with a cap on one line's length (the stream is untrusted-adjacent). */
export class LineSplitter {
  private pending = '';

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineChars = 64 * 1024 * 1024,
  ) {}

  push(chunk: string): void {
    this.pending += chunk;
    if (this.pending.length > this.maxLineChars) throw new Error(`runner output line longer than ${this.maxLineChars} chars`);
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      if (line.trim()) this.onLine(line);
      newline = this.pending.indexOf('\n');
    }
  }

  end(): void {
    if (this.pending.trim()) this.onLine(this.pending);
    this.pending = '';
  }
}
