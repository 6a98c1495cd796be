/** Novelty of programs: normalized tokens, shingles, MinHash (datasketch-identical), LSH, verdicts. */
export * from './fingerprint';
export * from './lsh';
export * from './minhash';
export * from './normalize';
export * from './shingles';
export * from './verdict';
export * from './compare';
export * from './batch';
