/**
 * selectAndAdmit: picks the cycle's novel candidates per the selection config and adds
 * them to the corpus with their provenance, in one transaction. Idempotent: the pool of
 * novel candidates (admitted ones included) is fixed once novelty has run, selection is
 * deterministic, and corpus rows are keyed by run/cycle/sample index.
 */
import { log } from '@temporalio/activity';
import type pg from 'pg';
import { selectCandidates } from '../core/selection';
import { CycleRef, SelectResult } from '../core/stages';
import { markAdmitted, novelCandidates } from '../db/candidates';
import { insertAdmission } from '../db/corpus';
import { withTransaction } from '../db/pool';
import { runInput } from './run-input';

export function createSelectActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async selectAndAdmit(raw: CycleRef): Promise<SelectResult> {
      const { input: ref, config } = await runInput(pool, CycleRef, raw);
      const novel = await novelCandidates(pool, ref.runId, ref.cycle);
      const byId = new Map(novel.map((candidate) => [candidate.id, candidate]));
      const selection = selectCandidates(
        novel.map((c) => ({ id: c.id, sampleIndex: c.sample_index, accuracy: c.accuracy })),
        config.selection,
      );
      await withTransaction(pool, async (client) => {
        for (const { id } of selection.admitted) {
          const candidate = byId.get(id)!;
          await insertAdmission(client, {
            candidate,
            runId: ref.runId,
            cycle: ref.cycle,
            dataset: config.dataset.name,
            provenance: {
              runId: ref.runId,
              cycle: ref.cycle,
              candidateId: candidate.id,
              sampleIndex: candidate.sample_index,
              model: candidate.model,
              promptHash: candidate.prompt_hash,
              accuracy: candidate.accuracy,
              selection: { mode: config.selection.mode, threshold: selection.threshold, fallbackUsed: selection.fallbackUsed },
              novelty: candidate.novelty,
            },
          });
          await markAdmitted(client, candidate.id);
        }
      });
      const result = SelectResult.parse({
        admitted: selection.admitted.length,
        threshold: selection.threshold,
        fallbackUsed: selection.fallbackUsed,
      });
      log.info('candidates admitted', { ...ref, novel: novel.length, ...result });
      return result;
    },
  };
}
