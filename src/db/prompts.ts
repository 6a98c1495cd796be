/** The `prompts` table: each prompt sent, once, keyed by its hash. */
import { z } from 'zod';
import type { ChatMessage, RenderedPrompt } from '../core/prompts';
import type { Queryable } from './pool';

export const PromptRecord = z.object({
  hash: z.string(),
  template: z.string(),
  template_hash: z.string(),
  body: z.string(),
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).nullable(),
});
export type PromptRecord = z.infer<typeof PromptRecord>;

/** A stored prompt by its hash. */
export async function promptByHash(db: Queryable, hash: string): Promise<PromptRecord | undefined> {
  const { rows } = await db.query('SELECT hash, template, template_hash, body, messages FROM prompts WHERE hash = $1', [hash]);
  return rows.length ? PromptRecord.parse(rows[0]) : undefined;
}

/** Stores a prompt once, with the whole conversation sent (prefill included) when given. */
export async function storePrompt(db: Queryable, prompt: RenderedPrompt, messages?: readonly ChatMessage[]): Promise<void> {
  await db.query(
    `INSERT INTO prompts (hash, template, template_hash, body, messages) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING`,
    [prompt.hash, prompt.template, prompt.templateHash, prompt.body, messages ? JSON.stringify(messages) : null],
  );
}
