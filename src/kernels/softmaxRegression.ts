/**
 * Multinomial logistic (softmax) regression kernels: small pure functions over typed arrays with
 * explicit shapes, no allocation per call, no RxJS, no I/O.
 *
 * Shapes (row-major throughout):
 *   x       B × width raw values (bytes or float32), starting at row `row0`
 *   φ(x)    features: x[j]·scale[j] + shift[j], then a constant 1 when `bias` (the notebook's Φ)
 *   W       rows × C, rows = width + (bias ? 1 : 0); the bias row is last (the notebook's layout)
 *   logits  B × C = φ(x) W
 *
 * The forward and backward rules sit side by side. Zero raw values contribute nothing when
 * `shift` is null, and MNIST is about 80% zero pixels, so every loop skips them.
 */
import type { FeatureTransform } from '../pipeline/messages.js';

export type Values = Uint8Array | Float32Array;

/**
 * The part of every row's logits that does not depend on x: Σ_j shift[j]·W[j,c] + W[bias,c].
 * Computed once per batch (the weights are fixed within a batch).
 */
export function constantLogits(W: Float32Array, C: number, t: FeatureTransform, out: Float64Array): void {
  out.fill(0);
  const { width, shift } = t;
  if (shift) {
    for (let j = 0; j < width; j++) {
      const s = shift[j];
      if (s === 0) continue;
      const o = j * C;
      for (let c = 0; c < C; c++) out[c] += s * W[o + c];
    }
  }
  if (t.bias) {
    const o = width * C;
    for (let c = 0; c < C; c++) out[c] += W[o + c];
  }
}

/** logits[b,c] = base[c] + Σ_{j: x[b,j] ≠ 0} x[b,j]·scale[j]·W[j,c], for rows row0 … row0+B−1. */
export function computeLogits(
  W: Float32Array,
  C: number,
  x: Values,
  row0: number,
  B: number,
  t: FeatureTransform,
  base: Float64Array,
  logits: Float64Array,
): void {
  const { width, scale } = t;
  for (let b = 0; b < B; b++) {
    const lo = b * C;
    for (let c = 0; c < C; c++) logits[lo + c] = base[c];
    const xo = (row0 + b) * width;
    for (let j = 0; j < width; j++) {
      const v = x[xo + j];
      if (v === 0) continue;
      const f = v * scale[j];
      const wo = j * C;
      for (let c = 0; c < C; c++) logits[lo + c] += f * W[wo + c];
    }
  }
}

/**
 * Softmax with cross-entropy, in place: turns each row of logits into δ = softmax(z) − onehot(label),
 * the gradient of the loss with respect to the logits. Numerically stable: the row maximum is
 * subtracted before exponentiating, so no exp overflows, and the loss is computed as
 * log Σ exp(z − max) − (z_label − max) instead of −log(p_label), which cannot take log(0).
 * Returns the summed loss; `correct` counts rows whose argmax (first maximum) equals the label.
 */
export function softmaxCrossEntropyGrad(
  logits: Float64Array,
  labels: Int32Array,
  label0: number,
  B: number,
  C: number,
  stats: { loss: number; correct: number },
): void {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const o = b * C;
    let max = logits[o];
    let arg = 0;
    for (let c = 1; c < C; c++) {
      const z = logits[o + c];
      if (z > max) {
        max = z;
        arg = c;
      }
    }
    const label = labels[label0 + b];
    const zLabel = logits[o + label];
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(logits[o + c] - max);
      logits[o + c] = e;
      sum += e;
    }
    loss += Math.log(sum) + max - zLabel;
    if (arg === label) correct++;
    const inv = 1 / sum;
    for (let c = 0; c < C; c++) logits[o + c] *= inv;
    logits[o + label] -= 1;
  }
  stats.loss += loss;
  stats.correct += correct;
}

/**
 * W ← W − η · Σ_b φ(x_b) δ_bᵀ  (the notebook's `outer(Φᵢ, yᵢ − tᵢ)`, summed over the batch).
 * `eta` already includes any 1/B of a mean reduction. Applied row by row over non-zero inputs, then
 * the dense shift and bias parts once, so the cost follows the number of non-zero pixels.
 */
export function sgdUpdate(
  W: Float32Array,
  C: number,
  x: Values,
  row0: number,
  B: number,
  t: FeatureTransform,
  delta: Float64Array,
  eta: number,
  deltaSum: Float64Array,
): void {
  const { width, scale, shift } = t;
  deltaSum.fill(0);
  for (let b = 0; b < B; b++) {
    const dO = b * C;
    for (let c = 0; c < C; c++) deltaSum[c] += delta[dO + c];
    const xo = (row0 + b) * width;
    for (let j = 0; j < width; j++) {
      const v = x[xo + j];
      if (v === 0) continue;
      const g = eta * v * scale[j];
      const wo = j * C;
      for (let c = 0; c < C; c++) W[wo + c] -= g * delta[dO + c];
    }
  }
  if (shift) {
    for (let j = 0; j < width; j++) {
      const s = shift[j];
      if (s === 0) continue;
      const g = eta * s;
      const wo = j * C;
      for (let c = 0; c < C; c++) W[wo + c] -= g * deltaSum[c];
    }
  }
  if (t.bias) {
    const wo = width * C;
    for (let c = 0; c < C; c++) W[wo + c] -= eta * deltaSum[c];
  }
}

/**
 * Predictions and cross-entropy for rows row0 … row0+B−1 without touching the weights.
 * Adds to `stats` and to `confusion[label·C + predicted]`; writes each row's prediction.
 */
export function evaluateRows(
  W: Float32Array,
  C: number,
  x: Values,
  labels: Int32Array,
  row0: number,
  B: number,
  t: FeatureTransform,
  base: Float64Array,
  logits: Float64Array,
  predicted: Int32Array,
  confusion: Float64Array,
  stats: { loss: number; correct: number },
): void {
  computeLogits(W, C, x, row0, B, t, base, logits);
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const o = b * C;
    let max = logits[o];
    let arg = 0;
    for (let c = 1; c < C; c++) {
      if (logits[o + c] > max) {
        max = logits[o + c];
        arg = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(logits[o + c] - max);
    const label = labels[row0 + b];
    loss += Math.log(sum) + max - logits[o + label];
    if (arg === label) correct++;
    predicted[b] = arg;
    confusion[label * C + arg] += 1;
  }
  stats.loss += loss;
  stats.correct += correct;
}

/** Row-wise numerically stable softmax, for callers that want probabilities. */
export function softmaxRows(z: Float64Array, B: number, C: number, out: Float64Array): void {
  for (let b = 0; b < B; b++) {
    const o = b * C;
    let max = z[o];
    for (let c = 1; c < C; c++) if (z[o + c] > max) max = z[o + c];
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(z[o + c] - max);
      out[o + c] = e;
      sum += e;
    }
    for (let c = 0; c < C; c++) out[o + c] /= sum;
  }
}
