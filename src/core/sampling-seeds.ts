/**
 * Sampling seeds: 31-bit seeds derived from what a request is for, so that a retried
 * activity asks the LLM for the same samples, and no two requests of a run share a seed.
 */
import { sha256 } from './prompts';

function seedOf(key: string): number {
  return parseInt(sha256(key).slice(0, 8), 16) & 0x7fffffff;
}

/**
 * A sampling batch's seed; sample index i of the batch uses seed + (i - firstIndex). Keyed by
 * the prompt's cycle, so the baseline (cycle 0, sampled on cycle 1's prompts) and cycle 1
 * share prompt and seed at each sample index: a paired comparison (src/core/learning.ts).
 */
export function batchSeed(batch: { runId: string; cycle: number; firstIndex: number; promptCycle?: number }): number {
  return seedOf(`${batch.runId}/${batch.promptCycle ?? batch.cycle}/${batch.firstIndex}`);
}

/** A repair's (or resample's) seed per (run, cycle, sample, attempt): a retried repair asks for the same answer. */
export function repairSeed(key: { runId: string; cycle: number; sampleIndex: number; attempt: number }): number {
  return seedOf(`${key.runId}/${key.cycle}/${key.sampleIndex}/repair-${key.attempt}`);
}
