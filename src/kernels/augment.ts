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
  for (let c = 0; c < channels; c++) {
    const plane = c * H * W;
    for (let y = 0; y < H; y++) {
      const sy = y - dy;
      const row = to + plane + y * W;
      if (sy < 0 || sy >= H) {
        dst.fill(0, row, row + W);
        continue;
      }
      const srow = from + plane + sy * W;
      for (let x = 0; x < W; x++) {
        // Output pixel x shows source column x − dx of the (possibly mirrored) image.
        const sx = (flip ? W - 1 - x : x) - dx;
        dst[row + x] = sx >= 0 && sx < W ? src[srow + sx]! : 0;
      }
    }
  }
  if (plan.noise > 0) addGaussianNoise(dst as Float32Array, to, channels * H * W, plan.noise, rng);
}

/** Add N(0, σ²) to n values: Box–Muller, both variates of each pair used. */
function addGaussianNoise(dst: Float32Array, to: number, n: number, sigma: number, rng: Prng): void {
  for (let i = 0; i < n; i += 2) {
    let u = rng.nextFloat();
    while (u === 0) u = rng.nextFloat();
    const r = sigma * Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * rng.nextFloat();
    dst[to + i]! += r * Math.cos(angle);
    if (i + 1 < n) dst[to + i + 1]! += r * Math.sin(angle);
  }
}
