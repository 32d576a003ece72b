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
  /**
   * a, b, c, d as int32 in a typed array: V8 keeps a number field above 2^31 boxed, which made
   * every draw a few loads and stores of heap numbers (a 60,000-row shuffle took ~10× as long).
   */
  private readonly s = new Int32Array(4);

  constructor(seed: number) {
    const next = splitmix32(seed);
    const s = this.s;
    for (let i = 0; i < 4; i++) s[i] = next();
    if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[3] = 1; // the all-zero state is a fixed point
  }

  static fromState(state: PrngState): Prng {
    const rng = new Prng(0);
    rng.restore(state);
    return rng;
  }

  snapshot(): PrngState {
    const s = this.s;
    return { s: [s[0]! >>> 0, s[1]! >>> 0, s[2]! >>> 0, s[3]! >>> 0] };
  }

  restore(state: PrngState): void {
    this.s.set(state.s.map((v) => v | 0));
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const a = s[0]!;
    const b = s[1]!;
    const c = s[2]! ^ a;
    const d = s[3]! ^ b;
    s[0] = a ^ d;
    s[1] = b ^ c;
    s[2] = c ^ (b << 9);
    s[3] = rotl(d, 11);
    return Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
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
      // Lemire's multiply-and-reject: x·n < 2^53 stays exact in a double, and its low 32 bits are
      // Math.imul's; the threshold 2^32 mod n (< n) is needed only when those bits are below n.
      for (;;) {
        const x = this.nextUint32();
        const low = Math.imul(x, n) >>> 0;
        if (low >= n || low >= (0x100000000 - n) % n) return Math.floor((x * n) / 0x100000000);
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
      const t = array[i]!;
      array[i] = array[j]!;
      array[j] = t;
    }
  }
}

/** x rotated left by k bits, as int32. */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
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
