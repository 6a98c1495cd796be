/**
 * Reads a wheel (a zip file) through the venv Python's zipfile module: Node has no zip
 * reader and archloop adds no npm package for one. The script is stdlib only and streams
 * one JSON line per entry, so a 100 MB wheel never sits in memory twice.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { pythonBin } from '../env';

const SCRIPT = `
import json, sys, zipfile
archive = zipfile.ZipFile(sys.argv[1])
if sys.argv[2] == 'list':
    for info in archive.infolist():
        if not info.is_dir():
            print(json.dumps({'name': info.filename, 'size': info.file_size}))
else:
    for line in sys.stdin:
        name = line.rstrip('\\n')
        if name:
            print(json.dumps({'name': name, 'text': archive.read(name).decode('utf-8', 'replace')}))
`;

export const ZipEntry = z.object({ name: z.string(), size: z.number().int().nonnegative() });
export type ZipEntry = z.infer<typeof ZipEntry>;
export const ZipText = z.object({ name: z.string(), text: z.string() });
export type ZipText = z.infer<typeof ZipText>;

async function* runZipScript(wheel: string, mode: 'list' | 'read', stdin: string[] = []): AsyncGenerator<unknown> {
  const child = spawn(pythonBin(), ['-c', SCRIPT, wheel, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (error) => reject(new Error(`cannot run ${pythonBin()} to read ${wheel}: ${error.message}`)));
    child.on('close', (code) => resolve(code ?? 1));
  });
  child.stdin.end(stdin.map((name) => `${name}\n`).join(''));
  for await (const line of createInterface({ input: child.stdout })) {
    if (line) yield JSON.parse(line);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`reading ${wheel} failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`);
}

export async function listZipEntries(wheel: string): Promise<ZipEntry[]> {
  const entries: ZipEntry[] = [];
  for await (const row of runZipScript(wheel, 'list')) entries.push(ZipEntry.parse(row));
  return entries;
}

/** The named entries as UTF-8 text, keyed by name. */
export async function readZipTexts(wheel: string, names: string[]): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  if (names.length === 0) return texts;
  for await (const row of runZipScript(wheel, 'read', names)) {
    const { name, text } = ZipText.parse(row);
    texts.set(name, text);
  }
  return texts;
}
