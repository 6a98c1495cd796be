/** What "Did it learn?" reads (src/core/learning.ts): the cycles' metrics, every first attempt with its prompt, the seed adapter's comparison. */
import { z } from 'zod';
import { SeedComparison, type FirstAttempt, type LearningInput } from '../core/learning';
import type { Queryable } from './pool';
import { loadCycleMetrics } from './runs';

const FirstAttemptRow = z.object({ cycle: z.number().int(), sample_index: z.number().int(), valid: z.boolean().nullable(), prompt_hash: z.string().nullable() });

export async function loadLearningInput(db: Queryable, runId: string): Promise<LearningInput> {
  const { rows } = await db.query(
    `SELECT cycle, sample_index, valid, prompt_hash FROM candidates WHERE run_id = $1 AND attempt = 0 AND cycle <= 1 ORDER BY cycle, sample_index`,
    [runId],
  );
  const firstAttempts = new Map<number, Map<number, FirstAttempt>>();
  for (const row of z.array(FirstAttemptRow).parse(rows)) {
    if (!firstAttempts.has(row.cycle)) firstAttempts.set(row.cycle, new Map());
    firstAttempts.get(row.cycle)!.set(row.sample_index, { valid: row.valid === true, promptHash: row.prompt_hash });
  }
  // The seed fine-tune's adapter records the comparison its cached adapter carried (src/activities/finetune.ts).
  const { rows: adapters } = await db.query<{ comparison: unknown }>(`SELECT manifest->'comparison' AS comparison FROM adapters WHERE run_id = $1 AND cycle = 0`, [runId]);
  const parsed = SeedComparison.safeParse(adapters[0]?.comparison);
  return { cycles: await loadCycleMetrics(db, runId), firstAttempts, seedComparison: parsed.success ? parsed.data : null };
}
