/**
 * One line per fine-tune of a run, from its adapter's manifest (src/activities/finetune.ts,
 * src/activities/gate.ts): what it trained on — each admission of that cycle how many
 * times, how many older pairs replayed — its steps and loss, anything it had to say (a cycle
 * that admitted nothing), and the gate's decision. Pure.
 */
import { z } from 'zod';

const Manifest = z.object({
  steps: z.number().optional(),
  finalLoss: z.number().nullable().optional(),
  pairs: z.number().optional(),
  own: z.number().optional(),
  passes: z.number().optional(),
  replayed: z.number().optional(),
  note: z.string().nullable().optional(),
  gate: z.object({ decision: z.string(), reason: z.string() }).optional(),
});

export interface AdapterSummary {
  cycle: number;
  status: string;
  manifest: Record<string, unknown>;
}

export function fineTuneLine(adapter: AdapterSummary): string {
  const parsed = Manifest.safeParse(adapter.manifest);
  const m = parsed.success ? parsed.data : {};
  const what =
    adapter.cycle === 0
      ? `seed fine-tune on ${m.pairs ?? '?'} pairs`
      : `${m.own ?? '?'} admission(s) × ${m.passes ?? '?'} passes + ${m.replayed ?? '?'} replayed = ${m.pairs ?? '?'} pairs`;
  const trained = m.steps === undefined ? adapter.status : `${m.steps} steps, final loss ${m.finalLoss?.toFixed(3) ?? '—'}`;
  const parts = [`after cycle ${adapter.cycle}: ${what}; ${trained}`];
  if (m.note) parts.push(m.note);
  if (m.gate) parts.push(`gate: ${m.gate.decision === 'keep-serving' ? 'kept out' : 'published'} (${m.gate.reason})`);
  return parts.join('; ');
}

export function formatFineTunes(adapters: readonly AdapterSummary[]): string {
  return adapters.length ? ['Fine-tunes:', ...adapters.map((a) => `  ${fineTuneLine(a)}`)].join('\n') : '';
}
