/**
 * Text as Postgres can store it. Postgres text and jsonb reject U+0000 and unpaired UTF-16
 * surrogates; an LLM's completion and a candidate's output may hold both. Text that is
 * stored and also parsed (a completion, then its extracted program) is cleaned first, so
 * that what is stored and what is parsed are the same.
 */

/** Lone UTF-16 surrogates (in `u` mode a paired surrogate is one code point and does not match). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/gu;

export function storableText(text: string): string {
  return text.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}
