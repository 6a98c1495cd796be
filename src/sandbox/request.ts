/** Builds the runner's stdin request from a run config and the worker's sandbox settings (pure). */
import type { RunConfig } from '../core/config';
import { SandboxRequest, SandboxSettings, type SandboxKind } from '../core/sandbox';

export function buildRequest(
  kind: SandboxKind,
  code: string,
  config: Pick<RunConfig, 'dataset' | 'contract' | 'training'>,
  settings: SandboxSettings,
): SandboxRequest {
  return SandboxRequest.parse({
    kind,
    code,
    dataset: config.dataset,
    contract: config.contract,
    training: config.training,
    sandbox: settings,
  });
}

/** Seconds the runner may take in total: its own wall limit plus start-up and dataset caching. */
export function outerTimeoutS(request: SandboxRequest, marginS = 120): number {
  const inner =
    request.kind === 'validate'
      ? request.contract.validateTimeoutS
      : request.training.timeLimitS + (request.sandbox.graceS ?? 60);
  return inner + marginS;
}

/**
 * Worker settings from the environment: ARCHLOOP_SANDBOX=none turns bubblewrap off (the
 * runner then also needs --unsafe-no-sandbox, which the client passes only in that case).
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): SandboxSettings {
  return SandboxSettings.parse({
    mode: env.ARCHLOOP_SANDBOX === 'none' ? 'none' : 'bwrap',
    auditHook: env.ARCHLOOP_SANDBOX_AUDIT_HOOK !== '0',
    ...(env.ARCHLOOP_SANDBOX_RO_BINDS ? { extraRoBinds: env.ARCHLOOP_SANDBOX_RO_BINDS.split(':').filter(Boolean) } : {}),
  });
}
