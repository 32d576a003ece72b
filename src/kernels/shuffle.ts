/**
 * The sampler's per-pass shuffle, compiled (simd/shuffle.wat): the permutation and the generator
 * state Prng.shuffle gives, draw for draw, without waiting for V8 to optimise a JavaScript loop.
 * A run's first two passes shuffled 60,000 rows in ~5 ms each, interpreted (later passes, once
 * optimised, in ~0.4 ms); through the module each takes ~0.3 ms from the start.
 */
import type { Prng } from '../util/random.js';
import { SHUFFLE_WASM } from './simd/shuffleWasm.js';
import { wasm } from './simd/softmaxRegressionModule.js';

/** Prng.int draws by multiply-and-reject up to 2^21 — the module's method; longer arrays use Prng's own. */
const MOST_ROWS = 0x200000 + 1;
/** Bytes before the array: the generator state. */
const STATE_BYTES = 16;

interface ShuffleExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  shuffle(state: number, array: number, n: number): void;
}

let instance: ShuffleExports | undefined;

/** Shuffle `array` in place with `rng`, as `rng.shuffle(array)` does. */
export function shuffleInPlace(rng: Prng, array: Int32Array | Uint32Array): void {
  const n = array.length;
  if (n > MOST_ROWS) {
    rng.shuffle(array);
    return;
  }
  instance ??= new wasm.Instance(new wasm.Module(Buffer.from(SHUFFLE_WASM, 'base64')), {})
    .exports as unknown as ShuffleExports;
  const ex = instance;
  const need = STATE_BYTES + 4 * n;
  const have = ex.memory.buffer.byteLength;
  if (need > have) ex.memory.grow(Math.ceil((need - have) / 65536));
  const words = new Int32Array(ex.memory.buffer, 0, 4 + n);
  words.set(rng.snapshot().s);
  words.set(array, 4);
  ex.shuffle(0, STATE_BYTES, n);
  array.set(words.subarray(4));
  rng.restore({ s: [words[0]!, words[1]!, words[2]!, words[3]!] });
}
