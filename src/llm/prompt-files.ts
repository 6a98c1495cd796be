/** Loads prompt templates from the repo's prompts/ folder (the versioned template files). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PromptTemplate } from '../core/prompts';
import { REPO_ROOT } from '../env';

export const PROMPTS_DIR = path.join(REPO_ROOT, 'prompts');

export function loadPromptTemplate(name: string, dir: string = PROMPTS_DIR): PromptTemplate {
  // A template name is a file stem, never a path.
  if (!/^[\w.-]+$/.test(name)) throw new Error(`invalid prompt template name ${JSON.stringify(name)}`);
  const file = path.join(dir, `${name}.md`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`prompt template ${name} not found at ${file}: ${(error as Error).message}`);
  }
  // The optional start of the assistant's reply, sent as a prefill the model continues.
  const replyFile = path.join(dir, `${name}.reply.md`);
  return existsSync(replyFile) ? { name, text, reply: readFileSync(replyFile, 'utf8') } : { name, text };
}
