/** How a run-scoped activity begins: its input parsed with the stage's schema, then the run's stored config. */
import type pg from 'pg';
import type { z } from 'zod';
import type { RunConfig } from '../core/config';
import { loadRunConfig } from '../db/runs';

export async function runInput<T extends { runId: string }>(pool: pg.Pool, schema: z.ZodType<T>, raw: unknown): Promise<{ input: T; config: RunConfig }> {
  const input = schema.parse(raw);
  return { input, config: await loadRunConfig(pool, input.runId) };
}
