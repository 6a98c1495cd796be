/**
 * Seeds that teach: a corpus entry becomes a fine-tune pair or a prompt reference only
 * after it validated at the run's own input shape and budget (its profile). LEMUR's
 * programs were trained at nn-gpt's 256×256 resize; at 32×32 a third of the AlexNet-derived
 * ones fail their forward pass, and fine-tuning on them teaches programs that fail.
 * Results are stored per (entry, profile) with the entry's structural hash, so each entry
 * is checked once per profile, by the importer, the CLI or a run's first activity.
 */
import { z } from 'zod';
import type { RunConfig } from '../core/config';
import { DATASET_SPECS } from '../core/datasets';
import type { Queryable } from '../db/pool';

/** The part of a run config a check depends on, as a stable key. */
export function profileOf(config: Pick<RunConfig, 'dataset' | 'contract'>): string {
  const [c, h, w] = DATASET_SPECS[config.dataset.name].shape;
  return `${config.dataset.name}/${c}x${h}x${w}/params<=${config.contract.maxParams}/flops<=${config.contract.maxFlops}`;
}

export interface CheckResult {
  corpusId: number;
  valid: boolean;
  failureClass: string | null;
  failureMessage: string | null;
  params: number | null;
  flops: number | null;
  structuralHash: string | null;
}

const Unchecked = z.object({ id: z.number().int().positive(), name: z.string().nullable(), code: z.string() });

/** Seed entries (no run) not yet checked under `profile`, in id order. */
export async function uncheckedSeeds(db: Queryable, profile: string, limit = 10_000): Promise<Array<z.infer<typeof Unchecked>>> {
  const { rows } = await db.query(
    `SELECT c.id, c.name, c.code FROM corpus c
      WHERE c.run_id IS NULL AND NOT EXISTS (SELECT 1 FROM corpus_checks k WHERE k.corpus_id = c.id AND k.profile = $1)
      ORDER BY c.id LIMIT $2`,
    [profile, limit],
  );
  return z.array(Unchecked).parse(rows);
}

export async function storeCheck(db: Queryable, profile: string, result: CheckResult): Promise<void> {
  await db.query(
    `INSERT INTO corpus_checks (corpus_id, profile, valid, failure_class, failure_message, params, flops, structural_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (corpus_id, profile) DO UPDATE
       SET valid = EXCLUDED.valid, failure_class = EXCLUDED.failure_class, failure_message = EXCLUDED.failure_message,
           params = EXCLUDED.params, flops = EXCLUDED.flops, structural_hash = EXCLUDED.structural_hash, checked_at = now()`,
    [result.corpusId, profile, result.valid, result.failureClass, result.failureMessage?.slice(0, 2000) ?? null, result.params, result.flops, result.structuralHash],
  );
}

const Summary = z.object({ failure_class: z.string().nullable(), valid: z.boolean(), n: z.number().int() });

export interface CheckSummary {
  profile: string;
  seeds: number;
  checked: number;
  kept: number;
  /** Entries left out, by failure class. */
  rejected: Record<string, number>;
}

/** How the seed corpus stands under `profile`. */
export async function checkSummary(db: Queryable, profile: string): Promise<CheckSummary> {
  const { rows } = await db.query(
    `SELECT k.failure_class, k.valid, count(*)::int AS n FROM corpus c
       JOIN corpus_checks k ON k.corpus_id = c.id AND k.profile = $1
      WHERE c.run_id IS NULL GROUP BY 1, 2`,
    [profile],
  );
  const { rows: total } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM corpus WHERE run_id IS NULL`);
  const summary: CheckSummary = { profile, seeds: total[0]?.n ?? 0, checked: 0, kept: 0, rejected: {} };
  for (const row of z.array(Summary).parse(rows)) {
    summary.checked += row.n;
    if (row.valid) summary.kept += row.n;
    else summary.rejected[row.failure_class ?? 'unknown'] = (summary.rejected[row.failure_class ?? 'unknown'] ?? 0) + row.n;
  }
  return summary;
}

export function describeSummary(summary: CheckSummary): string {
  const rejected = Object.entries(summary.rejected)
    .sort((a, b) => b[1] - a[1])
    .map(([cls, n]) => `${cls} ${n}`)
    .join(', ');
  return (
    `seed corpus at ${summary.profile}: kept ${summary.kept} of ${summary.checked} checked (${summary.seeds} seed entries)` +
    (rejected ? `; left out: ${rejected}` : '')
  );
}

/** SQL condition: corpus row `c` may teach under profile `$n` (this run's own admissions always may). */
export function teachesUnder(profileParam: string): string {
  return `(c.run_id IS NOT NULL OR EXISTS (SELECT 1 FROM corpus_checks k WHERE k.corpus_id = c.id AND k.profile = ${profileParam} AND k.valid))`;
}
