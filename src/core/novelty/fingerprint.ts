/**
 * A program's novelty fingerprint under a run's novelty config: its normalized shingles
 * and their MinHash signature, plus the key under which such signatures are stored (two
 * signatures are comparable only when their keys are equal).
 */
import type { z } from 'zod';
import type { NoveltyConfig } from '../config';
import { minhashSignature, type MinHashParams } from './minhash';
import { normalizedTokens, type NormalizeOptions } from './normalize';
import { shingles } from './shingles';

export type NoveltySettings = z.infer<typeof NoveltyConfig>;

/** datasketch's default seed; fixed so that signatures compare across runs. */
export const MINHASH_SEED = 1;
/** Bump when tokenization or normalization changes: stored signatures then no longer match. */
export const NORMALIZER_VERSION = 1;

export interface Fingerprint {
  tokens: number;
  shingles: Set<string>;
  signature: Uint32Array;
}

export function normalizeOptions(settings: NoveltySettings): NormalizeOptions {
  return {
    identifiers: settings.normalizeIdentifiers,
    numbers: settings.normalizeNumbers,
    strings: settings.normalizeStrings,
  };
}

export function minhashParams(settings: NoveltySettings): MinHashParams {
  return { numPerm: settings.numPerm, seed: MINHASH_SEED };
}

/** Canonical key of everything a signature depends on, e.g. `affine32/s1/p128/k7/n1-ins`. */
export function signatureKey(settings: NoveltySettings): string {
  const switches = [
    settings.normalizeIdentifiers ? 'i' : '',
    settings.normalizeNumbers ? 'n' : '',
    settings.normalizeStrings ? 's' : '',
  ].join('');
  return `affine32/s${MINHASH_SEED}/p${settings.numPerm}/k${settings.shingleSize}/n${NORMALIZER_VERSION}-${switches || 'raw'}`;
}

export function fingerprint(code: string, settings: NoveltySettings): Fingerprint {
  const tokens = normalizedTokens(code, normalizeOptions(settings));
  const shingleSet = shingles(tokens, settings.shingleSize);
  return { tokens: tokens.length, shingles: shingleSet, signature: minhashSignature(shingleSet, minhashParams(settings)) };
}
