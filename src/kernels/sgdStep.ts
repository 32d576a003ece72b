/**
 * One stochastic-gradient step of a model, and the evaluation of a weight set, through the model's
 * kernel (modelKernel.ts: softmax regression or a multi-layer perceptron).
 *
 * The step follows PyTorch's `torch.optim.SGD` with `clip_grad_norm_` before it:
 *   g  = ∇ of the batch loss (mean over the batch, or sum: `reduction`)
 *   g ← g · min(1, clip/‖g‖)                       (clipNorm > 0)
 *   g ← g + λ·W                                    (weightDecay λ; not on the bias row)
 *   v ← μ·v + g;  step = nesterov ? g + μ·v : v    (momentum μ > 0; else step = g)
 *   W ← W − lr·step
 * The softmax runs in the kernel too (f32, a polynomial exp, the row maximum subtracted first).
 * Plain SGD (no clipping, decay or momentum) on a batch that fits one chunk skips the gradient
 * buffer: each row's update goes straight into W once the whole batch's logits are computed.
 */
import type { FeatureTransform } from './features.js';
import type { ModelKernel } from './modelKernel.js';
import type { LossStats, Values } from './softmaxRegression.js';

export interface OptimiserOptions {
  reduction: 'mean' | 'sum';
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Largest gradient norm; 0: no clipping. */
  clipNorm: number;
}

export interface StepStats extends LossStats {
  /** The gradient's norm before clipping, when clipping is on (else NaN). */
  gradNorm: number;
}

export class ModelSgd {
  readonly stats: StepStats = { loss: 0, correct: 0, gradNorm: Number.NaN };
  private readonly direct: boolean;

  constructor(
    readonly kernel: ModelKernel,
    readonly options: OptimiserOptions,
  ) {
    this.direct = options.momentum === 0 && options.weightDecay === 0 && options.clipNorm === 0;
  }

  /**
   * One update on rows row0 … row0+n−1 of x (or, with `index`, on rows index[row0 …]) with
   * learning rate lr; stats are before the update. `reusable`: the table x is handed over for
   * good (ModelKernel.load).
   */
  step(
    x: Values,
    labels: Int32Array,
    row0: number,
    n: number,
    t: FeatureTransform,
    lr: number,
    index?: Int32Array,
    reusable = false,
  ): StepStats {
    const k = this.kernel;
    const { reduction, clipNorm } = this.options;
    const stats = this.stats;
    stats.loss = 0;
    stats.correct = 0;
    stats.gradNorm = Number.NaN;
    k.setTransform(t);
    const per = reduction === 'mean' ? 1 / n : 1;
    if (this.direct && n <= k.chunkRows) {
      this.chunk(x, labels, row0, n, index, reusable);
      k.backward(n, 'W', -lr * per);
      return stats;
    }
    k.zeroGradient();
    for (let r = 0; r < n; r += k.chunkRows) {
      const m = Math.min(k.chunkRows, n - r);
      this.chunk(x, labels, row0 + r, m, index, reusable);
      k.backward(m, 'G', per);
    }
    let gscale = 1;
    if (clipNorm > 0) {
      stats.gradNorm = Math.sqrt(k.gradientNormSquared());
      if (stats.gradNorm > clipNorm) gscale = clipNorm / stats.gradNorm;
    }
    const { weightDecay, momentum, nesterov } = this.options;
    k.applyUpdate(lr, gscale, weightDecay, momentum, nesterov);
    return stats;
  }

  /** Forward m rows and turn their logits into δ (and Σδ) in the kernel's buffers. */
  private chunk(
    x: Values,
    labels: Int32Array,
    row0: number,
    m: number,
    index: Int32Array | undefined,
    reusable: boolean,
  ): void {
    const k = this.kernel;
    k.load(x, labels, row0, m, index, reusable);
    k.forward(m);
    k.softmax(m, true, this.stats);
  }
}

export interface SetScores {
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** confusion[label·C + predicted] = count. */
  confusion: Float64Array;
}

/**
 * Accuracy, mean loss and confusion of a model's weights on a whole set of `count` rows, a
 * chunk at a time. `onPrediction(row, predicted)` sees every row's prediction. With `again` (a set
 * scored at every evaluation), the kernel may keep the rows in a form of its own as the first call
 * reads them, and read that on the next (`ModelKernel.keep`); the scores are the same either way.
 */
export function evaluateSet(
  kernel: ModelKernel,
  weights: Float32Array,
  x: Values,
  labels: Int32Array,
  count: number,
  t: FeatureTransform,
  onPrediction?: (row: number, predicted: number) => void,
  again = false,
): SetScores {
  const C = kernel.classes;
  kernel.setTransform(t);
  kernel.writeWeights(weights);
  const kept = again ? kernel.keep?.(x, count) : undefined;
  const predicted = new Int32Array(kernel.chunkRows);
  const confusion = new Float64Array(C * C);
  const stats: LossStats = { loss: 0, correct: 0 };
  for (let r = 0; r < count; r += kernel.chunkRows) {
    const n = Math.min(kernel.chunkRows, count - r);
    if (kept?.complete) kernel.loadKept!(kept, labels, r, n);
    else kernel.load(x, labels, r, n);
    kernel.forward(n);
    if (kept && !kept.complete) kernel.keepLoaded!(kept, r, n);
    kernel.softmax(n, false, stats, confusion, predicted);
    if (onPrediction) for (let i = 0; i < n; i++) onPrediction(r + i, predicted[i]!);
  }
  return { accuracy: count ? stats.correct / count : 0, loss: count ? stats.loss / count : 0, confusion };
}

/** How weights start: all zeros, or drawn from N(mean, std²) (the notebook: N(0, 1)). */
export type WeightInit = { type: 'zeros' } | { type: 'normal'; mean: number; std: number };

/** `size` initial weights, drawn in order from `rng` (so a seed gives the same weights). */
export function initialWeights(size: number, init: WeightInit, rng: { normal(): number }): Float32Array {
  const W = new Float32Array(size);
  if (init.type === 'normal') {
    const { mean, std } = init;
    for (let i = 0; i < W.length; i++) W[i] = mean + std * rng.normal();
  }
  return W;
}
