/**
 * What a sandbox outcome becomes in the `candidates` row (pure). The activities write
 * exactly these values and the CLI prints exactly these values, so `archloop validate
 * --json` shows what a run would store.
 */
import type { TrainOutcome, ValidateOutcome } from '../core/sandbox';

export interface ValidationRow {
  status: 'valid' | 'invalid';
  valid: boolean;
  failureClass: string | null;
  failureMessage: string | null;
  /** The whole outcome except the graph (which has its own column). */
  validation: Omit<ValidateOutcome, 'graph'>;
  graphIr: ValidateOutcome['graph'];
  structuralHash: string | null;
  params: number | null;
  flops: number | null;
  timings: { validate: Record<string, number> };
}

export interface TrainingRow {
  status: 'trained' | 'train-failed';
  accuracy: number | null;
  failureClass: string | null;
  failureMessage: string | null;
  training: TrainOutcome;
  timings: { train: Record<string, number> };
}

/** Postgres text and jsonb cannot hold U+0000, and candidate output may contain it. */
export function withoutNul<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll('\u0000', '\uFFFD') as T;
  if (Array.isArray(value)) return value.map(withoutNul) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNul(v)])) as T;
  }
  return value;
}

export function validationRow(raw: ValidateOutcome): ValidationRow {
  const outcome = withoutNul(raw);
  const { graph, ...validation } = outcome;
  return {
    status: outcome.ok ? 'valid' : 'invalid',
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
  const outcome = withoutNul(raw);
  return {
    status: outcome.ok ? 'trained' : 'train-failed',
    accuracy: outcome.accuracy,
    failureClass: outcome.failure?.class ?? null,
    failureMessage: outcome.failure?.message ?? null,
    training: outcome,
    timings: { train: outcome.timings },
  };
}
