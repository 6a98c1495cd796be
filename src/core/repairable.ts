/**
 * Which failures a further attempt may fix (repair from errors, or resampling): extraction,
 * the static checks and the forward check. Kept free of imports: workflow code uses it.
 */
export const REPAIRABLE: ReadonlySet<string> = new Set([
  'empty-completion',
  'no-code',
  'truncated',
  'unchanged',
  'syntax',
  'contract',
  'import',
  'instantiate',
  'forward',
  'shape',
  'non-finite',
  'too-large',
]);

export function isRepairable(failureClass: string | null): boolean {
  return failureClass !== null && REPAIRABLE.has(failureClass);
}
