/** The generator: the published xoshiro128** sequence, and int/shuffle/snapshot against plain reference versions. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { assembleWat, SIMD_DIR } from '../scripts/build-wasm.js';
import { shuffleInPlace } from '../src/kernels/shuffle.js';
import { SHUFFLE_WASM } from '../src/kernels/simd/shuffleWasm.js';
import { Prng } from '../src/util/random.js';

/** xoshiro128** written out plainly in uint32 arithmetic: the oracle for the typed-array version. */
function reference(state: number[]) {
  let [a, b, c, d] = state.map((v) => v >>> 0) as [number, number, number, number];
  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c = (c ^ a) >>> 0;
    d = (d ^ b) >>> 0;
    b = (b ^ c) >>> 0;
    a = (a ^ d) >>> 0;
    c = (c ^ t) >>> 0;
    d = rotl(d, 11);
    return result;
  };
}

/** Lemire's multiply-and-reject as first written, with the threshold computed on every draw. */
function referenceInt(next: () => number, n: number): number {
  const threshold = (0x100000000 - n) % n;
  for (;;) {
    const m = next() * n;
    if (m % 0x100000000 >= threshold) return Math.floor(m / 0x100000000);
  }
}

test('nextUint32 gives xoshiro128** (the published sequence from state 1, 2, 3, 4)', (t) => {
  const rng = Prng.fromState({ s: [1, 2, 3, 4] });
  const got = Array.from({ length: 6 }, () => rng.nextUint32());
  t.deepEqual(got, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('nextUint32 matches the plain uint32 version for states with the top bit set', (t) => {
  const state: [number, number, number, number] = [0xdeadbeef, 0x80000001, 0xffffffff, 0x7fffffff];
  const rng = Prng.fromState({ s: state });
  const oracle = reference(state);
  for (let i = 0; i < 10_000; i++) {
    const v = rng.nextUint32();
    if (v !== oracle()) return t.fail(`draw ${i} differs`);
    t.true(v >= 0 && v <= 0xffffffff && Number.isInteger(v));
  }
  t.pass();
});

test('int draws what the first-written rejection loop draws, for every kind of range', (t) => {
  const state: [number, number, number, number] = [0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x12345678];
  for (const n of [2, 3, 7, 10, 60_000, 65_536, 1_000_003, 0x1fffff, 0x200000]) {
    const rng = Prng.fromState({ s: state });
    const oracle = reference(state);
    for (let i = 0; i < 5_000; i++) {
      const got = rng.int(n);
      const want = referenceInt(oracle, n);
      if (got !== want) return t.fail(`n=${n}, draw ${i}: ${got} ≠ ${want}`);
    }
  }
  t.pass();
});

test('int rejects a draw whose low bits fall under the threshold', (t) => {
  // n = 0x180000: 2^32 mod n = 0x100000, so draws with low product bits below that are rejected.
  const n = 0x180000;
  const state: [number, number, number, number] = [5, 6, 7, 8];
  const rng = Prng.fromState({ s: state });
  const oracle = reference(state);
  let rejected = 0;
  for (let i = 0; i < 20_000; i++) {
    const want = referenceInt(() => {
      const x = oracle();
      if (((Math.imul(x, n) >>> 0) as number) < 0x100000) rejected++;
      return x;
    }, n);
    t.is(rng.int(n), want);
  }
  t.true(rejected > 0, 'some draws were rejected');
});

test('snapshot and restore carry the state exactly, as uint32 words', (t) => {
  const rng = new Prng(42);
  for (let i = 0; i < 100; i++) rng.nextUint32();
  const snap = rng.snapshot();
  t.true(snap.s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff));
  const copy = Prng.fromState(JSON.parse(JSON.stringify(snap)));
  for (let i = 0; i < 100; i++) t.is(copy.nextUint32(), rng.nextUint32());
});

test('shuffle is a permutation and the same for the same seed', (t) => {
  const a = Int32Array.from({ length: 1000 }, (_, i) => i);
  const b = a.slice();
  new Prng(3).shuffle(a);
  new Prng(3).shuffle(b);
  t.deepEqual(a, b);
  t.deepEqual(
    Array.from(a).sort((x, y) => x - y),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  t.notDeepEqual(
    Array.from(a.subarray(0, 20)),
    Array.from({ length: 20 }, (_, i) => i),
  );
});

test('shuffle draws what Fisher–Yates with int() draws, and leaves the same state', (t) => {
  // 0x200000 + 50 rows: the first 50 draws take int()'s path for ranges above 2^21.
  for (const length of [1, 2, 1000, 60_000, 0x200000 + 50]) {
    const state: [number, number, number, number] = [0xdeadbeef, 0x80000001, 0x12345678, 0x7fffffff];
    const got = Int32Array.from({ length }, (_, i) => i);
    const want = got.slice();
    const rng = Prng.fromState({ s: state });
    rng.shuffle(got);
    const plain = Prng.fromState({ s: state });
    for (let i = want.length - 1; i > 0; i--) {
      const j = plain.int(i + 1);
      const v = want[i]!;
      want[i] = want[j]!;
      want[j] = v;
    }
    t.true(
      got.every((v, i) => v === want[i]),
      `length ${length}`,
    );
    t.deepEqual(rng.snapshot(), plain.snapshot(), `state after length ${length}`);
  }
});

test('the all-zero state is never produced from a seed', (t) => {
  for (let seed = 0; seed < 1000; seed++) t.notDeepEqual(new Prng(seed).snapshot().s, [0, 0, 0, 0]);
});

test('the compiled shuffle gives Prng.shuffle’s permutation and leaves the generator where it does', (t) => {
  for (const n of [0, 1, 2, 3, 17, 1000, 60000, 100001]) {
    for (const seed of [0, 1, 0xdeadbeef]) {
      const reference = new Prng(seed);
      reference.nextUint32(); // start mid-stream
      const compiled = Prng.fromState(reference.snapshot());
      const expected = Int32Array.from({ length: n }, (_, i) => i * 3 - 7);
      const actual = expected.slice();
      reference.shuffle(expected);
      shuffleInPlace(compiled, actual);
      t.deepEqual(actual, expected, `n ${n}, seed ${seed}`);
      t.deepEqual(compiled.snapshot(), reference.snapshot(), `state after n ${n}, seed ${seed}`);
    }
  }
  const big = new Prng(5);
  const words = Uint32Array.from({ length: 50 }, (_, i) => 0xffffff00 + i);
  const copy = words.slice();
  shuffleInPlace(big, words);
  new Prng(5).shuffle(copy);
  t.deepEqual(words, copy, 'unsigned words above 2^31 survive the trip');
});

test('the committed shuffle module is the assembled shuffle.wat', async (t) => {
  const bytes = await assembleWat('shuffle.wat', readFileSync(join(SIMD_DIR, 'shuffle.wat'), 'utf8'));
  t.is(SHUFFLE_WASM, Buffer.from(bytes).toString('base64'), 'run npm run build:wasm');
});
