/**
 * Paired comparison of two models sampled on the same prompts with the same seeds: sample i
 * of side A and sample i of side B share everything but the weights, so the question is
 * whether they disagree in one direction more than chance allows. The exact McNemar test
 * answers it from the discordant pairs alone (A valid and B not, or the reverse): under no
 * difference each discordant pair goes either way with probability 1/2. Pure.
 *
 * Why exact (binomial) and not McNemar's chi-square: at the sizes a CPU can sample (tens of
 * pairs, a handful discordant) the chi-square approximation is poor; the exact test is
 * what statsmodels' `mcnemar(exact=True)` computes.
 */
import { wilsonInterval } from './metrics';

export interface Rate {
  successes: number;
  trials: number;
  rate: number;
  low: number;
  high: number;
}

export function rateOf(successes: number, trials: number): Rate {
  const [low, high] = wilsonInterval(successes, trials);
  return { successes, trials, rate: trials ? successes / trials : 0, low, high };
}

/** log C(n, k), exact enough for n in the thousands (sum of logs; no overflow). */
function logChoose(n: number, k: number): number {
  let sum = 0;
  for (let i = 1; i <= k; i++) sum += Math.log(n - k + i) - Math.log(i);
  return sum;
}

/** Two-sided exact McNemar p-value from the discordant counts b (A only) and c (B only). */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  let tail = 0;
  for (let i = 0; i <= k; i++) tail += Math.exp(logChoose(n, i) - n * Math.LN2);
  return Math.min(1, 2 * tail);
}

export type Verdict = 'better' | 'worse' | 'not distinguishable' | 'not measured';

export interface PairedOutcome {
  /** Pairs compared (samples present on both sides). */
  n: number;
  a: Rate;
  b: Rate;
  /** Discordant pairs: A succeeded where B failed, and the reverse. */
  aOnly: number;
  bOnly: number;
  pValue: number;
  /** B against A at `alpha`. */
  verdict: Verdict;
  alpha: number;
}

/**
 * B against A on paired successes (index i on both sides is one pair). Indexes present on
 * one side only are left out.
 */
export function pairedComparison(a: ReadonlyMap<number, boolean>, b: ReadonlyMap<number, boolean>, alpha = 0.05): PairedOutcome {
  let aOnly = 0;
  let bOnly = 0;
  let aWins = 0;
  let bWins = 0;
  let n = 0;
  for (const [index, aOk] of a) {
    const bOk = b.get(index);
    if (bOk === undefined) continue;
    n++;
    if (aOk) aWins++;
    if (bOk) bWins++;
    if (aOk && !bOk) aOnly++;
    if (bOk && !aOk) bOnly++;
  }
  const pValue = mcnemarExact(aOnly, bOnly);
  const verdict: Verdict = n === 0 ? 'not measured' : pValue >= alpha ? 'not distinguishable' : bOnly > aOnly ? 'better' : 'worse';
  return { n, a: rateOf(aWins, n), b: rateOf(bWins, n), aOnly, bOnly, pValue, verdict, alpha };
}

/** The smallest number of discordant pairs, all one way, that can reach p < alpha (e.g. 6 at 0.05). */
export function minDiscordantForSignificance(alpha = 0.05): number {
  let n = 1;
  while (mcnemarExact(n, 0) >= alpha) n++;
  return n;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export function formatRate(rate: Rate | null): string {
  return rate === null ? '—' : `${rate.successes}/${rate.trials} = ${pct(rate.rate)} (${pct(rate.low)}–${pct(rate.high)})`;
}

export function formatPValue(p: number): string {
  return p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`;
}
