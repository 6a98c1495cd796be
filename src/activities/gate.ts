/**
 * gateAdapter (control queue): the adapter gate (lora.gate). The new adapter and the model
 * serving now are sampled on the same prompts with the same seeds (src/llm/compare.ts, no
 * repair: the gate asks what each writes), validated, and judged novel against the corpus
 * as of this cycle; the new adapter is kept out only when it is worse on novel valid designs
 * per sample at lora.gate.alpha. A sample too small to reach that level says "not measured"
 * and publishes. The verdict goes into the adapter's manifest.
 */
import { cancellationSignal, log } from '@temporalio/activity';
import type pg from 'pg';
import { mergeJson, parseConfig } from '../core/config';
import { formatPValue, minDiscordantForSignificance } from '../core/paired';
import { GateInput, type GateResult } from '../core/stages';
import { profileOf } from '../corpus/checks';
import { adapterById, recordAdapterGate } from '../db/adapters';
import { corpusAsOf } from '../db/corpus';
import { batchPrompts } from '../llm/prompts';
import { compareModels, COMPARE_SEED } from '../llm/compare';
import { llmClientFromConfig } from '../llm/from-config';
import { serveAdapter } from '../llm/serve-adapter';
import { runInput } from './run-input';
import { keepAlive, llmFailure } from './llm-support';

export function createGateActivities(deps: { pool: pg.Pool }) {
  const { pool } = deps;
  return {
    async gateAdapter(raw: GateInput): Promise<GateResult> {
      const { input, config: stored } = await runInput(pool, GateInput, raw);
      const { samples, alpha } = stored.lora.gate;
      const needed = minDiscordantForSignificance(alpha);
      const finish = async (result: GateResult, details: Record<string, unknown> = {}) => {
        await recordAdapterGate(pool, input.adapterId, { ...result, against: input.servingModel, samples, alpha, ...details });
        log.info('adapter gate', { ...input, ...result });
        return result;
      };
      if (samples < needed) {
        return finish({ decision: 'publish', measured: false, reason: `not measured: ${samples} paired samples cannot reach p < ${alpha} (at least ${needed} needed)` });
      }
      const adapter = await adapterById(pool, input.adapterId);
      if (!adapter) return finish({ decision: 'publish', measured: false, reason: `not measured: adapter ${input.adapterId} is missing` });
      // What each model writes, unrepaired: the gate compares designers, not repairs.
      const config = parseConfig(mergeJson(stored, { sampling: { repair: 'none' } }));
      const stop = keepAlive(() => ({ phase: 'gate', samples }));
      try {
        const candidate = await serveAdapter(pool, adapter, { signal: cancellationSignal(), log });
        const batch = Math.max(1, config.sampling.samplesPerActivity);
        const prompts = await batchPrompts(pool, config, `gate/${input.runId}/${input.cycle}`, samples, batch);
        const corpus = (await corpusAsOf(pool, input.runId, input.cycle, profileOf(config))).map((row) => ({ code: row.code, structural_hash: null }));
        const client = llmClientFromConfig(config, { signal: cancellationSignal(), log });
        const comparison = await compareModels(config, { label: 'serving', model: input.servingModel }, { label: 'new', model: candidate }, { a: client, b: client }, {
          samples,
          batch,
          // Seeds of compare's range (no training data is sampled there), one block per cycle.
          seed: COMPARE_SEED + 100_000 * (input.cycle + 1),
          promptFor: (first) => prompts.get(first)!,
          corpus,
        });
        const { novelValid: nv } = comparison;
        const summary = `novel and valid ${nv.a.successes}/${nv.n} serving → ${nv.b.successes}/${nv.n} new, better on ${nv.bOnly}, worse on ${nv.aOnly}, exact McNemar ${formatPValue(nv.pValue)}`;
        const worse = nv.aOnly > nv.bOnly && nv.pValue < alpha;
        return finish(
          worse
            ? { decision: 'keep-serving', measured: true, reason: `worse than ${input.servingModel}: ${summary}` }
            : { decision: 'publish', measured: true, reason: `not worse than ${input.servingModel}: ${summary}` },
          { novelValid: nv, firstAttempt: comparison.firstAttempt },
        );
      } catch (error) {
        throw llmFailure(error); // a dead endpoint is retried like any activity; the workflow publishes if it never answers
      } finally {
        stop();
      }
    },
  };
}
