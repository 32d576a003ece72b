/**
 * A seeded pseudo-random generator whose whole state is four 32-bit words, so a sampler's or an
 * initialiser's randomness can be checkpointed and restored exactly. There is no global generator
 * anywhere in rxtrain: every stage gets its own from its context.
 *
 * Algorithm: xoshiro128** (Blackman & Vigna), seeded through splitmix32 so that nearby seeds give
 * unrelated streams.
 */

export interface PrngState {
  s: [number, number, number, number];
}

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const next = splitmix32(seed);
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the all-zero state is a fixed point
  }

  static fromState(state: PrngState): Prng {
    const rng = new Prng(0);
    rng.restore(state);
    return rng;
  }

  snapshot(): PrngState {
    return { s: [this.a, this.b, this.c, this.d] };
  }

  restore(state: PrngState): void {
    const [a, b, c, d] = state.s;
    this.a = a >>> 0;
    this.b = b >>> 0;
    this.c = c >>> 0;
    this.d = d >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!(Number.isInteger(n) && n > 0 && n <= 2 ** 52)) throw new RangeError(`Prng.int: bad range ${n}`);
    if (n === 1) return 0;
    if (n <= 0x200000) {
      // Lemire's multiply-and-reject; x·n < 2^53 stays exact in a double.
      const threshold = (0x100000000 - n) % n;
      for (;;) {
        const m = this.nextUint32() * n;
        if (m % 0x100000000 >= threshold) return Math.floor(m / 0x100000000);
      }
    }
    // Larger ranges: reject from 53 random bits so every residue is equally likely.
    const limit = 9007199254740992 - (9007199254740992 % n);
    for (;;) {
      const r = (this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6);
      if (r < limit) return r % n;
    }
  }

  /** Standard normal variate (Box–Muller; one of the pair is discarded so state stays 4 words). */
  normal(): number {
    let u = this.nextFloat();
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle(array: Uint32Array | Int32Array): void {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A stage's seed derived from the run seed and its id, so stages draw unrelated streams. */
export function deriveSeed(runSeed: number, id: string): number {
  let h = 0x811c9dc5 ^ (runSeed >>> 0);
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return splitmix32(h ^ Math.imul(runSeed | 0, 0x9e3779b1))();
}

/**
 * The seed of one sample's generator: a hash of the stage's seed, the pass and the sample's index
 * in the pass. A stage that transforms samples draws from `new Prng(sampleSeed(…))` per sample, so
 * what a sample gets depends on nothing but where it stands in training: each pass differs, and a
 * resumed run, whose sampler restarts mid-pass, gives every sample what it got the first time.
 */
export function sampleSeed(seed: number, epoch: number, index: number): number {
  const mix = splitmix32(seed ^ Math.imul(epoch + 1, 0x9e3779b1));
  const a = mix();
  return splitmix32(a ^ Math.imul(index >>> 0, 0x85ebca6b) ^ Math.floor(index / 2 ** 32))();
}
