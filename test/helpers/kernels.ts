/** Fixtures for the kernel tests: feature transforms, MNIST-like random rows, weights, tolerances. */
import type { FeatureTransform } from '../../src/kernels/features.js';
import type { Prng } from '../../src/util/random.js';

export type Values = Uint8Array | Float32Array;

export function transformOf(
  width: number,
  opts: { scale?: number[]; shift?: number[] | null; bias?: boolean } = {},
): FeatureTransform {
  return {
    width,
    scale: Float32Array.from(opts.scale ?? new Array(width).fill(1 / 255)),
    shift: opts.shift ? Float32Array.from(opts.shift) : null,
    bias: opts.bias ?? true,
  };
}

/**
 * A transform of one of three kinds, its scales drawn from `rng`: 'uniform' (x/255, a bias),
 * 'per-feature' (small scales and shifts of their own, a bias) or 'no-bias' (scales, no bias).
 */
export function transformKind(
  rng: Prng,
  width: number,
  kind: 'uniform' | 'per-feature' | 'no-bias',
): FeatureTransform {
  const scale = Array.from({ length: width }, () => 0.001 + rng.nextFloat() / 100);
  if (kind === 'uniform') return transformOf(width);
  if (kind === 'per-feature') return transformOf(width, { scale, shift: scale.map((s) => -s * 30) });
  return transformOf(width, { scale, bias: false });
}

/** Random rows with ~70% zeros, like MNIST. */
export function randomData(rng: Prng, n: number, width: number, C: number, floats = false) {
  const x = floats ? new Float32Array(n * width) : new Uint8Array(n * width);
  for (let i = 0; i < x.length; i++)
    if (rng.nextFloat() < 0.3) x[i] = floats ? rng.nextFloat() * 2 - 1 : 1 + rng.int(255);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(C);
  return { x, labels };
}

export function randomWeights(rng: Prng, size: number, std = 0.5) {
  const W = new Float32Array(size);
  for (let i = 0; i < W.length; i++) W[i] = std * rng.normal();
  return W;
}

/** |a − b| ≤ tol · max(1, |b|). */
export function close(
  t: { true(v: boolean, m?: string): void },
  a: number,
  b: number,
  tol: number,
  what: string,
) {
  t.true(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}
