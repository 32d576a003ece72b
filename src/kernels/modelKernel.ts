/**
 * What the SGD step, the evaluator and `predict` ask of a model's kernel, whatever the model: one
 * object owning the weights, the optimiser's buffers and the scratch for up to `chunkRows` rows.
 * Weights go in and out in the model-file layout (architecture.ts); inside, each kernel pads them
 * as its SIMD loops like.
 *
 * A step is: `load` rows → `forward` → `softmax(grad)` (the loss, and δ at the output) →
 * `backward` into W (plain SGD) or into the gradient buffer G → `applyUpdate` from G.
 */
import type { Architecture } from './architecture.js';
import type { FeatureTransform } from './features.js';
import { MlpKernel } from './mlp.js';
import type { PackedRows } from './packedRows.js';
import { type LossStats, SoftmaxRegressionKernel, type Values } from './softmaxRegression.js';

/** A set a kernel keeps in a form of its own (`keep`). */
export type KeptRows = PackedRows;

export interface ModelKernel {
  readonly classes: number;
  /** Most rows one forward pass takes. */
  readonly chunkRows: number;
  /** Use feature transform t from now on. */
  setTransform(t: FeatureTransform): void;
  writeWeights(weights: Float32Array): void;
  readWeights(out?: Float32Array): Float32Array;
  writeVelocity(v: Float32Array): void;
  readVelocity(out?: Float32Array): Float32Array;
  /**
   * Copy n rows (row0 …, or index[row0 …]) and their labels into the kernel. `reusable`: the
   * table x is handed over for good (`SampleBlock.reusable`), and the kernel may keep rows in a
   * form of its own in their place; the results are the same either way.
   */
  load(x: Values, labels: Int32Array, row0: number, n: number, index?: Int32Array, reusable?: boolean): void;
  /**
   * Optional, for a set scored again and again: the kernel's own form of rows 0 … count−1 of x,
   * filled by `keepLoaded` as the first pass over the set loads and forwards its rows in order,
   * then read by `loadKept` faster than `load` reads rows; the same object for the same rows.
   * Undefined when the kernel has no such form or it would not pay.
   */
  keep?(x: Values, count: number): KeptRows | undefined;
  /** After `load` and `forward` of rows row0 … row0+n−1 of a set `keep` returned incomplete. */
  keepLoaded?(rows: KeptRows, row0: number, n: number): void;
  /** Load rows row0 … row0+n−1 of a complete kept set, and their labels. */
  loadKept?(rows: KeptRows, labels: Int32Array, row0: number, n: number): void;
  /** The output layer's logits of the first n loaded rows. */
  forward(n: number): void;
  /**
   * The softmax cross-entropy of the first n rows against their labels, added to `stats`; with
   * `grad`, the output's δ for `backward`; without, each prediction to `predicted` and `confusion`.
   */
  softmax(n: number, grad: boolean, stats: LossStats, confusion?: Float64Array, predicted?: Int32Array): void;
  /** target += alpha · ∇ of the summed loss of the first n rows, from the weights before the call. */
  backward(n: number, target: 'W' | 'G', alpha: number): void;
  /** Loaded row b's logits after `forward` (C values). */
  logitsOf(b: number, out: Float64Array): void;
  zeroGradient(): void;
  /** ‖G‖², in double precision. */
  gradientNormSquared(): number;
  /** W ← W − lr·step from the gradient gscale·G (PyTorch's SGD rule); decay spares the bias rows. */
  applyUpdate(lr: number, gscale: number, decay: number, momentum: number, nesterov: boolean): void;
}

/** The kernel for a model: rows of bytes, or of float32 with `floats`. */
export function createModelKernel(a: Architecture, floats: boolean, chunkRows: number): ModelKernel {
  if (a.type === 'softmax') {
    const width = a.inputShape.reduce((x, y) => x * y, 1);
    return new SoftmaxRegressionKernel({ width, classes: a.classes, bias: a.bias, floats }, chunkRows);
  }
  return new MlpKernel(a, floats, chunkRows);
}
