/**
 * numpy's legacy `RandomState(seed)` generator (MT19937), just enough of it to draw the
 * same MinHash permutation parameters as datasketch: `randint(low, high, size,
 * dtype=uint32)` uses numpy's masked rejection sampling on 32-bit draws.
 */

const N = 624;
const M = 397;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

export class Mt19937 {
  private readonly state = new Uint32Array(N);
  private position = N;

  /** numpy's `mt19937_seed` (Knuth's initializer), as used by `RandomState(int)`. */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError('seed must be a uint32');
    this.state[0] = seed;
    for (let i = 1; i < N; i++) {
      const previous = this.state[i - 1]! ^ (this.state[i - 1]! >>> 30);
      this.state[i] = Math.imul(1812433253, previous) + i;
    }
  }

  nextUint32(): number {
    if (this.position >= N) this.twist();
    let y = this.state[this.position++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const mt = this.state;
    for (let i = 0; i < N; i++) {
      const y = (mt[i]! & UPPER_MASK) | (mt[(i + 1) % N]! & LOWER_MASK);
      mt[i] = mt[(i + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.position = 0;
  }
}

/** Smallest all-ones bit mask covering `range` (numpy's `gen_mask`). */
function bitMask(range: number): number {
  let mask = range;
  mask |= mask >>> 1;
  mask |= mask >>> 2;
  mask |= mask >>> 4;
  mask |= mask >>> 8;
  mask |= mask >>> 16;
  return mask >>> 0;
}

/**
 * `RandomState.randint(low, high, size, dtype=np.uint32)` (high exclusive): numpy's
 * `random_bounded_uint32_fill` with `use_masked=True`, the legacy-compatible path.
 */
export function randintUint32(generator: Mt19937, low: number, high: number, size: number): Uint32Array {
  if (!(Number.isInteger(low) && Number.isInteger(high) && low >= 0 && high <= 2 ** 32 && low < high)) {
    throw new RangeError(`invalid uint32 range [${low}, ${high})`);
  }
  const out = new Uint32Array(size);
  const range = high - 1 - low;
  if (range === 0) return out.fill(low);
  if (range === 0xffffffff) {
    for (let i = 0; i < size; i++) out[i] = generator.nextUint32();
    return out;
  }
  const mask = bitMask(range);
  for (let i = 0; i < size; i++) {
    let value: number;
    do value = (generator.nextUint32() & mask) >>> 0;
    while (value > range);
    out[i] = low + value;
  }
  return out;
}
