/**
 * Copying a sampler's rows (by row number) into a kernel's input, as fast as a plain loop can: a
 * row of 784 bytes copied 4 bytes at a time through Int32Array views, with no subarray object per
 * row. `target.set(x.subarray(…))` per row allocated two objects a row — 410,000 of them in the
 * default run, ~0.3 µs each with the garbage they left — for what is a 784-byte copy. Integers,
 * not Float64Array, so that no bit pattern is ever read as a NaN.
 */
import type { Values } from './softmaxRegression.js';

/** `x` seen as 32-bit words (two small objects per batch, none per row), if it is aligned. */
function int32View(x: Values): Int32Array | undefined {
  if (x.byteOffset % 4 !== 0) return undefined;
  return new Int32Array(x.buffer, x.byteOffset, x.byteLength >> 2);
}

/**
 * Rows `index[row0 … row0+n)` of `x` (`width` values each) into rows 0 … n−1 of `target`, and their
 * labels into `targetLabels`. `target` is the same kind of array as `x`.
 */
export function gatherRows(
  x: Values,
  labels: Int32Array,
  index: Int32Array,
  row0: number,
  n: number,
  width: number,
  target: Values,
  targetLabels: Int32Array,
): void {
  const rowBytes = width * x.BYTES_PER_ELEMENT;
  const from = rowBytes % 4 === 0 ? int32View(x) : undefined;
  const to = from ? int32View(target) : undefined;
  if (!from || !to) {
    for (let b = 0; b < n; b++) {
      const r = index[row0 + b]!;
      target.set(x.subarray(r * width, r * width + width) as never, b * width);
      targetLabels[b] = labels[r]!;
    }
    return;
  }
  const words = rowBytes >> 2;
  for (let b = 0; b < n; b++) {
    const r = index[row0 + b]!;
    const src = r * words;
    const dst = b * words;
    for (let i = 0; i < words; i++) to[dst + i] = from[src + i]!;
    targetLabels[b] = labels[r]!;
  }
}
