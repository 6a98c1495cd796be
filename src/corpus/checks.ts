/**
 * Seeds that teach: a corpus entry becomes a fine-tune pair or a prompt reference only
 * after it validated at the run's own input shape and budget (its profile). LEMUR's
 * programs were trained at nn-gpt's 256×256 resize; at 32×32 a third of the AlexNet-derived
 * ones fail their forward pass, and fine-tuning on them teaches programs that fail.
 * Results are stored per (entry, profile) with the entry's structural hash, so each entry
 * is checked once per profile, by the importer, the CLI or a run's first activity.
 */
import type { RunConfig } from '../core/config';
import { runDatasetSpec } from '../core/datasets';
import type { CheckSummary } from '../db/corpus';

/**
 * The part of a run config a check depends on, as a stable key. The shape is the one the
 * network sees, so a resized run (dataset.resize) has profiles of its own.
 */
export function profileOf(config: Pick<RunConfig, 'dataset' | 'contract'>): string {
  const [c, h, w] = runDatasetSpec(config.dataset).shape;
  return `${config.dataset.name}/${c}x${h}x${w}/params<=${config.contract.maxParams}/flops<=${config.contract.maxFlops}`;
}

export function describeSummary(summary: CheckSummary): string {
  const rejected = Object.entries(summary.rejected)
    .sort((a, b) => b[1] - a[1])
    .map(([cls, n]) => `${cls} ${n}`)
    .join(', ');
  return (
    `seed corpus at ${summary.profile}: kept ${summary.kept} of ${summary.checked} checked (${summary.seeds} seed entries)` +
    (rejected ? `; left out: ${rejected}` : '')
  );
}
