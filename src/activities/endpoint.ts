/**
 * checkEndpoint (control queue, once per run before cycle 0): the LLM endpoint serves the
 * model and can do what the run needs (src/llm/capabilities.ts). A missing capability fails
 * the run at once, naming the setting to change; an endpoint that is down is retried.
 */
import { ApplicationFailure, cancellationSignal, log } from '@temporalio/activity';
import type pg from 'pg';
import { RunRef, type EndpointCheck } from '../core/stages';
import { loadRunConfig } from '../db/runs';
import { llmFailure } from './llm-support';
import { missingCapabilities, probeEndpoint } from '../llm/capabilities';
import { resolveEndpoint } from '../llm/endpoint';

export function createEndpointActivities(deps: { pool: pg.Pool }) {
  return {
    async checkEndpoint(raw: RunRef): Promise<EndpointCheck> {
      const { runId } = RunRef.parse(raw);
      const config = await loadRunConfig(deps.pool, runId);
      const endpoint = resolveEndpoint(config.llm);
      let caps;
      try {
        caps = await probeEndpoint(endpoint, config.llm.model, { timeoutMs: config.llm.requestTimeoutS * 1000, signal: cancellationSignal() });
      } catch (error) {
        throw llmFailure(error);
      }
      const problems = missingCapabilities(caps, config, endpoint.baseUrl);
      log.info('LLM endpoint checked', { runId, baseUrl: endpoint.baseUrl, ...caps, problems });
      if (problems.length) throw ApplicationFailure.nonRetryable(`the LLM endpoint cannot serve this run: ${problems.join('; ')}`, 'EndpointUnfit');
      return { models: caps.models, n: caps.n === true, loraApi: caps.loraApi };
    },
  };
}
