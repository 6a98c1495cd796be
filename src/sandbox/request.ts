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

export class UnsafeModeRefused extends Error {
  override name = 'UnsafeModeRefused';
}

export const UNSAFE_CONSENT = 'ARCHLOOP_ALLOW_UNSAFE';

/** Unsafe mode (no bubblewrap) needs explicit consent: ARCHLOOP_ALLOW_UNSAFE=1. */
export function assertUnsafeAllowed(env: NodeJS.ProcessEnv = process.env): void {
  if (env[UNSAFE_CONSENT] !== '1') {
    throw new UnsafeModeRefused(
      `running candidates without a sandbox needs ${UNSAFE_CONSENT}=1 as well: they then run unconfined, ` +
        'and their accuracy can be forged (never on a shared machine)',
    );
  }
}

/**
 * Worker settings from the environment: ARCHLOOP_SANDBOX=none turns bubblewrap off, and only
 * with ARCHLOOP_ALLOW_UNSAFE=1 (the runner then also needs --unsafe-no-sandbox, which the
 * client passes only in that case); ARCHLOOP_SANDBOX_SLOTS sets how many sandboxes may run
 * at once on this machine, each as its own uid.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): SandboxSettings {
  const mode = env.ARCHLOOP_SANDBOX === 'none' ? 'none' : 'bwrap';
  if (mode === 'none') assertUnsafeAllowed(env);
  return SandboxSettings.parse({
    mode,
    auditHook: env.ARCHLOOP_SANDBOX_AUDIT_HOOK !== '0',
    ...(env.ARCHLOOP_SANDBOX_SLOTS ? { slots: Number(env.ARCHLOOP_SANDBOX_SLOTS) } : {}),
    ...(env.ARCHLOOP_SANDBOX_RO_BINDS ? { extraRoBinds: env.ARCHLOOP_SANDBOX_RO_BINDS.split(':').filter(Boolean) } : {}),
  });
}
