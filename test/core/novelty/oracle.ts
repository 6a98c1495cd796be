/** Runs datasketch (datasketch_oracle.py, next to this file) in the repo's venv. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { pythonBin } from '../../../src/env';

export interface OracleRequest {
  minhash?: Array<{ num_perm: number; seed: number; items: string[] }>;
  lsh?: Array<{ threshold: number; num_perm: number; weights: [number, number] }>;
}

const OracleResponse = z.object({
  signatures: z.array(z.array(z.number().int().nonnegative())),
  layouts: z.array(z.tuple([z.number().int(), z.number().int()])),
});

export function datasketch(request: OracleRequest): z.infer<typeof OracleResponse> {
  const script = path.join(__dirname, 'datasketch_oracle.py');
  const result = spawnSync(pythonBin(), [script], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.error) throw new Error(`cannot run ${pythonBin()}: ${result.error.message} (set up the venv: npm run setup)`);
  if (result.status !== 0) throw new Error(`datasketch oracle failed (${result.status}): ${result.stderr}`);
  return OracleResponse.parse(JSON.parse(result.stdout));
}

/** A program from test/fixtures/novelty. */
export const fixture = (name: string) => readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'novelty', name), 'utf8');
