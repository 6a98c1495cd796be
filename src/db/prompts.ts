/** The `prompts` table: each prompt sent, once, keyed by its hash. */
import type { ChatMessage, RenderedPrompt } from '../core/prompts';
import type { Queryable } from './pool';

/** Stores a prompt once, with the whole conversation sent (prefill included) when given. */
export async function storePrompt(db: Queryable, prompt: RenderedPrompt, messages?: readonly ChatMessage[]): Promise<void> {
  await db.query(
    `INSERT INTO prompts (hash, template, template_hash, body, messages) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING`,
    [prompt.hash, prompt.template, prompt.templateHash, prompt.body, messages ? JSON.stringify(messages) : null],
  );
}
