/**
 * One stochastic-gradient step of softmax regression on a mini-batch, with its scratch buffers
 * allocated once: forward (logits), softmax cross-entropy and its gradient, then the update.
 */
import type { FeatureTransform } from '../pipeline/messages.js';
import {
  computeLogits,
  constantLogits,
  evaluateRows,
  sgdUpdate,
  softmaxCrossEntropyGrad,
  type Values,
} from './softmaxRegression.js';

export interface StepStats {
  /** Summed cross-entropy of the batch, before the update. */
  loss: number;
  /** Samples the model classified correctly, before the update. */
  correct: number;
}

export class SoftmaxSgd {
  private readonly logits: Float64Array;
  private readonly base: Float64Array;
  private readonly deltaSum: Float64Array;
  readonly stats: StepStats = { loss: 0, correct: 0 };

  constructor(
    readonly classes: number,
    readonly maxBatch: number,
  ) {
    this.logits = new Float64Array(maxBatch * classes);
    this.base = new Float64Array(classes);
    this.deltaSum = new Float64Array(classes);
  }

  /**
   * W ← W − eta · Σ_b φ(x_b)(softmax(φ(x_b)W) − onehot(y_b))ᵀ over rows row0 … row0+B−1.
   * Pass eta = lr/B for the gradient of the batch-mean loss, lr for the summed loss.
   */
  step(
    W: Float32Array,
    x: Values,
    labels: Int32Array,
    row0: number,
    B: number,
    t: FeatureTransform,
    eta: number,
  ): StepStats {
    const C = this.classes;
    this.stats.loss = 0;
    this.stats.correct = 0;
    constantLogits(W, C, t, this.base);
    computeLogits(W, C, x, row0, B, t, this.base, this.logits);
    softmaxCrossEntropyGrad(this.logits, labels, row0, B, C, this.stats);
    sgdUpdate(W, C, x, row0, B, t, this.logits, eta, this.deltaSum);
    return this.stats;
  }
}

/** Accuracy, mean loss and confusion of weights W on a whole set, in chunks of `chunk` rows. */
export function evaluateSet(
  W: Float32Array,
  classes: number,
  x: Values,
  labels: Int32Array,
  count: number,
  t: FeatureTransform,
  onPrediction?: (row: number, predicted: number) => void,
  chunk = 512,
): { accuracy: number; loss: number; confusion: Float64Array } {
  const logits = new Float64Array(chunk * classes);
  const base = new Float64Array(classes);
  const predicted = new Int32Array(chunk);
  const confusion = new Float64Array(classes * classes);
  const stats = { loss: 0, correct: 0 };
  constantLogits(W, classes, t, base);
  for (let r = 0; r < count; r += chunk) {
    const n = Math.min(chunk, count - r);
    evaluateRows(W, classes, x, labels, r, n, t, base, logits, predicted, confusion, stats);
    if (onPrediction) for (let i = 0; i < n; i++) onPrediction(r + i, predicted[i]!);
  }
  return { accuracy: count ? stats.correct / count : 0, loss: count ? stats.loss / count : 0, confusion };
}
