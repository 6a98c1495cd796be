/**
 * What a sandbox outcome becomes in the `candidates` row (pure). The activities write
 * exactly these values and the CLI prints exactly these values, so `archloop validate
 * --json` shows what a run would store. `sandboxMode` repeats the stored
 * `validation.sandbox.mode` / `training.sandbox.mode`: 'none' marks a row produced
 * WITHOUT a sandbox (unsafe mode), null one that never reached the sandbox.
 */
import type { TrainOutcome, ValidateOutcome } from '../core/sandbox';
import type { TrainingRow, ValidationRow } from '../db/candidates';
import { storableText } from '../core/storable-text';

/** Postgres text and jsonb reject U+0000 and lone surrogates, in keys as in values, and candidate output may hold both. */
export function storable<T>(value: T): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), storable(v)])) as T;
  }
  return value;
}

export function validationRow(raw: ValidateOutcome): ValidationRow {
  const outcome = storable(raw);
  const { graph, ...validation } = outcome;
  return {
    status: outcome.ok ? 'valid' : 'invalid',
    sandboxMode: outcome.sandbox?.mode ?? null,
    valid: outcome.ok,
    failureClass: outcome.failure?.class ?? null,
    failureMessage: outcome.failure?.message ?? null,
    validation,
    graphIr: graph,
    structuralHash: outcome.structuralHash,
    params: outcome.params,
    flops: outcome.flops,
    timings: { validate: outcome.timings },
  };
}

/** A low-accuracy model keeps its accuracy (the paper's metrics count it) but is train-failed. */
export function trainingRow(raw: TrainOutcome): TrainingRow {
  const outcome = storable(raw);
  return {
    status: outcome.ok ? 'trained' : 'train-failed',
    sandboxMode: outcome.sandbox?.mode ?? null,
    accuracy: outcome.accuracy,
    failureClass: outcome.failure?.class ?? null,
    failureMessage: outcome.failure?.message ?? null,
    training: outcome,
    timings: { train: outcome.timings },
  };
}
