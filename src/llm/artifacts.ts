/** Where fine-tuning files live, and which directory a configured base model names. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../core/prompts';
import { artifactsDir, stateDir } from '../env';

/** A run id as one path segment; a hash suffix keeps sanitized ids apart (a/b vs a_b). */
export function safeSegment(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return safe === id ? id : `${safe}-${sha256(id).slice(0, 8)}`;
}

export function cycleDir(runId: string, cycle: number, root: string = artifactsDir()): string {
  return path.join(root, safeSegment(runId), `cycle-${cycle}`);
}

/**
 * `lora.baseModel` is a directory, or the name of a model prepared under
 * $ARCHLOOP_HOME/models (where `archloop.llm.prepare_model` writes it). Anything else is
 * passed through, and the trainer reports it as a missing base model.
 */
export function resolveBaseModel(name: string): string {
  if (existsSync(name)) return path.resolve(name);
  const prepared = path.join(stateDir(), 'models', name);
  return existsSync(prepared) ? prepared : name;
}

/** The name an adapter is served under: stable, so publishing twice loads it once. */
export function adapterModelName(runId: string, cycle: number): string {
  return `archloop-${safeSegment(runId)}-cycle-${cycle}`;
}
