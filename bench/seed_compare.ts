/**
 * Summary of bench/seed_compare.sh: valid at the first attempt and after repair, base model
 * against seed adapter, with Wilson 95 % intervals and the verdict "Did it learn?" uses.
 *   node --import tsx bench/seed_compare.ts base.json seed-adapter.json
 */
import { readFileSync } from 'node:fs';
import { compareRates, formatRate, type Rate } from '../src/core/learning';
import { wilsonInterval } from '../src/core/metrics';
import type { PreflightReport } from '../src/llm/preflight';

function rate(successes: number, trials: number): Rate {
  const [low, high] = wilsonInterval(successes, trials);
  return { successes, trials, rate: trials ? successes / trials : 0, low, high };
}

const [basePath, seedPath] = process.argv.slice(2);
if (!basePath || !seedPath) throw new Error('usage: seed_compare.ts base.json seed-adapter.json');
const [base, seed] = [basePath, seedPath].map((file) => JSON.parse(readFileSync(file, 'utf8')) as PreflightReport);
for (const [label, pick] of [
  ['valid at the first attempt', (r: PreflightReport) => rate(r.validFirst, r.samples)],
  ['valid after repair', (r: PreflightReport) => rate(r.validAfterRepair, r.samples)],
] as const) {
  const [b, s] = [pick(base!), pick(seed!)];
  console.log(`${label}: base ${formatRate(b)}, seed adapter ${formatRate(s)}: ${compareRates(s, b)}`);
}
for (const [name, r] of [['base', base!], ['seed adapter', seed!]] as const) {
  console.log(`${name}: first failures ${JSON.stringify(r.failureClasses)}, after repair ${JSON.stringify(r.failureClassesAfterRepair)}, ${r.completionTokens} tokens, sampling ${r.samplingS.toFixed(0)} s, repair ${r.repairS.toFixed(0)} s`);
}
