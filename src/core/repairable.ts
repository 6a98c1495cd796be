/**
 * Which failures a further attempt may fix (repair from errors, or resampling): extraction,
 * the static checks and the forward check. Kept free of imports: workflow code uses it.
 */

/** The sandbox's failure classes of validation's static checks and forward check: what the program itself got wrong before any training (src/core/sandbox.ts lists them first). */
export const VALIDATION_FAILURES = ['syntax', 'contract', 'import', 'instantiate', 'forward', 'shape', 'non-finite', 'too-large'] as const;

/** Extraction's failure classes (src/core/extract.ts), and a repair that returned the program unchanged. */
const EXTRACTION_FAILURES = ['empty-completion', 'no-code', 'truncated', 'unchanged'] as const;

/** Every failure class a further attempt may fix. */
export const REPAIRABLE: ReadonlySet<string> = new Set([...EXTRACTION_FAILURES, ...VALIDATION_FAILURES]);

export function isRepairable(failureClass: string | null): boolean {
  return failureClass !== null && REPAIRABLE.has(failureClass);
}
