/**
 * Random image augmentation of one sample, pure numerics over typed arrays: a translation by up
 * to ±`translate` pixels in each direction (what moves in is 0, as with torchvision's padded
 * RandomCrop), a horizontal flip with probability ½, and additive Gaussian noise of standard
 * deviation `noise`, in the values' own units. Every draw comes from the generator it is given,
 * in a fixed order (dy, dx, flip, then one normal per value), so one seed gives one result.
 */
import type { Prng } from '../util/random.js';

export interface AugmentPlan {
  /** Largest shift in pixels, each way, of both axes (0: none). */
  translate: number;
  /** Mirror left–right half the time. */
  flip: boolean;
  /** Standard deviation of the noise added to every value (0: none). */
  noise: number;
}

/** Channels-first image layout: [channels, height, width]. */
export interface ImageLayout {
  channels: number;
  height: number;
  width: number;
}

/** The layout of examples of `shape`: [H, W] is one channel, [C, H, W] channels first. */
export function imageLayout(shape: readonly number[]): ImageLayout | undefined {
  if (shape.length === 2) return { channels: 1, height: shape[0]!, width: shape[1]! };
  if (shape.length === 3) return { channels: shape[0]!, height: shape[1]!, width: shape[2]! };
  return undefined;
}

/**
 * Write the augmented copy of `src[from … from+C·H·W)` to `dst[to …]`. `dst` holds bytes only
 * when there is no noise (a shift and a flip move values, they never make new ones).
 */
export function augmentSample(
  src: Uint8Array | Float32Array,
  from: number,
  dst: Uint8Array | Float32Array,
  to: number,
  layout: ImageLayout,
  plan: AugmentPlan,
  rng: Prng,
): void {
  const { channels, height: H, width: W } = layout;
  const k = plan.translate;
  const dy = k > 0 ? rng.int(2 * k + 1) - k : 0;
  const dx = k > 0 ? rng.int(2 * k + 1) - k : 0;
  const flip = plan.flip && rng.nextUint32() >= 0x80000000;
  // Output pixel (y, x) shows source pixel (y − dy, x − dx) of the (possibly mirrored) image.
  const x0 = Math.max(0, dx);
  const x1 = Math.min(W, W + dx);
  for (let c = 0; c < channels; c++) {
    const plane = c * H * W;
    for (let y = 0; y < H; y++) {
      const sy = y - dy;
      const row = to + plane + y * W;
      if (sy < 0 || sy >= H || x0 >= x1) {
        dst.fill(0, row, row + W);
        continue;
      }
      const srow = from + plane + sy * W;
      dst.fill(0, row, row + x0);
      dst.fill(0, row + x1, row + W);
      if (!flip) dst.set(src.subarray(srow + x0 - dx, srow + x1 - dx), row + x0);
      else for (let x = x0; x < x1; x++) dst[row + x] = src[srow + W - 1 - (x - dx)]!;
    }
  }
  if (plan.noise > 0) addGaussianNoise(dst as Float32Array, to, channels * H * W, plan.noise, rng);
}

/**
 * Add N(0, σ²) to n values, two per 32-bit draw: each 16-bit half picks one of 65,536 equally
 * likely normal quantiles (the inverse CDF at (i + ½)/65,536). That is the normal distribution
 * quantised to 2¹⁶ levels and cut at ±4.3σ — indistinguishable for noise — at a table lookup per
 * value, where Box–Muller's logarithm and cosine cost ten times as much.
 */
function addGaussianNoise(dst: Float32Array, to: number, n: number, sigma: number, rng: Prng): void {
  const table = normalQuantiles();
  for (let i = 0; i < n; i += 2) {
    const bits = rng.nextUint32();
    dst[to + i]! += sigma * table[bits & 0xffff]!;
    if (i + 1 < n) dst[to + i + 1]! += sigma * table[bits >>> 16]!;
  }
}

let quantiles: Float64Array | undefined;

/** The 65,536 normal quantiles, computed once. */
function normalQuantiles(): Float64Array {
  if (quantiles) return quantiles;
  quantiles = new Float64Array(65536);
  for (let i = 0; i < 65536; i++) quantiles[i] = inverseNormalCdf((i + 0.5) / 65536);
  return quantiles;
}

/** Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation, relative error below 1.2e-9. */
export function inverseNormalCdf(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}
