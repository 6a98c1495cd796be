/** File writes that a crash cannot leave half done. */
import { renameSync, writeFileSync } from 'node:fs';

/** Writes via a temp file beside it and a rename, so a reader sees the old file or the new one, whole. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
