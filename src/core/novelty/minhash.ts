/**
 * MinHash signatures bit-identical to datasketch 2.x `MinHash(num_perm, seed=1)` with its
 * defaults: the "affine32" scheme and `sha1_hash32`. Per item: h = first 4 bytes of
 * SHA-1 (little-endian), pre-mixed with the MurmurHash3 32-bit finalizer, then for each
 * permutation k: (a_k * h + b_k) mod 2^32, keeping the minimum. The a_k, b_k come from
 * numpy's RandomState(seed), reproduced in ./mt19937 (proven equal by a test that runs
 * datasketch itself). All arithmetic is uint32 with wraparound, so Math.imul is exact.
 */
import { createHash } from 'node:crypto';
import { Mt19937, randintUint32 } from './mt19937';

export interface MinHashParams {
  numPerm: number;
  seed: number;
}

export const DATASKETCH_DEFAULTS: MinHashParams = { numPerm: 128, seed: 1 };

export interface Permutations {
  a: Uint32Array;
  b: Uint32Array;
}

const permutationCache = new Map<string, Permutations>();

/** datasketch's `_init_permutations` for affine32: a odd in [1, 2^32), b in [0, 2^32). */
export function permutations({ numPerm, seed }: MinHashParams): Permutations {
  const key = `${numPerm}:${seed}`;
  let cached = permutationCache.get(key);
  if (!cached) {
    const generator = new Mt19937(seed);
    const a = randintUint32(generator, 0, 2 ** 31, numPerm).map((half) => half * 2 + 1);
    const b = randintUint32(generator, 0, 2 ** 32, numPerm);
    cached = { a, b };
    permutationCache.set(key, cached);
  }
  return cached;
}

/** datasketch's `sha1_hash32`: the first 4 bytes of SHA-1, read as a little-endian uint32. */
export function sha1Hash32(item: string | Uint8Array): number {
  return createHash('sha1').update(item).digest().readUInt32LE(0);
}

/** MurmurHash3's 32-bit finalizer (datasketch `_fmix` at width 32). */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Signature of a set given its items' 32-bit hashes (before the fmix pre-mix). */
export function signatureFromHashes(hashes: ArrayLike<number>, params: MinHashParams = DATASKETCH_DEFAULTS): Uint32Array {
  const { a, b } = permutations(params);
  const signature = new Uint32Array(params.numPerm).fill(0xffffffff);
  for (let i = 0; i < hashes.length; i++) {
    const h = fmix32(hashes[i]!);
    for (let k = 0; k < signature.length; k++) {
      const permuted = (Math.imul(a[k]!, h) + b[k]!) >>> 0;
      if (permuted < signature[k]!) signature[k] = permuted;
    }
  }
  return signature;
}

/** Signature of a set of strings, each hashed as its UTF-8 bytes (datasketch `update(s.encode())`). */
export function minhashSignature(items: Iterable<string>, params: MinHashParams = DATASKETCH_DEFAULTS): Uint32Array {
  const hashes: number[] = [];
  for (const item of items) hashes.push(sha1Hash32(item));
  return signatureFromHashes(hashes, params);
}

/** datasketch `MinHash.jaccard`: the share of positions where the signatures agree. */
export function estimateJaccard(left: Uint32Array, right: Uint32Array): number {
  if (left.length !== right.length) throw new RangeError('signatures of different lengths');
  let equal = 0;
  for (let k = 0; k < left.length; k++) if (left[k] === right[k]) equal++;
  return equal / left.length;
}

/** Storage form: num_perm uint32 values, little-endian (what Postgres keeps as bytea). */
export function signatureToBytes(signature: Uint32Array): Buffer {
  const bytes = Buffer.alloc(signature.length * 4);
  signature.forEach((value, k) => bytes.writeUInt32LE(value, k * 4));
  return bytes;
}

export function signatureFromBytes(bytes: Uint8Array): Uint32Array {
  if (bytes.length % 4 !== 0) throw new RangeError('signature bytes must be a multiple of 4');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const signature = new Uint32Array(bytes.length / 4);
  for (let k = 0; k < signature.length; k++) signature[k] = view.readUInt32LE(k * 4);
  return signature;
}
