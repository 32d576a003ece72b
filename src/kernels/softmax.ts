/**
 * Softmax cross-entropy on rows of logits: the gradient for training and the scores for
 * evaluation. Pure functions over typed arrays with explicit shapes; no allocation.
 *
 * Shapes: `z` holds B rows of `stride` values (stride ≥ C: the SIMD kernel pads its rows to a
 * multiple of 4); only the first C of each row are classes. Labels are read from `labels[label0 + b]`.
 *
 * Numerically stable: each row's maximum is subtracted before exponentiating, so no exp overflows,
 * and the loss is log Σ exp(z − max) − (z_label − max) rather than −log p_label, which cannot take
 * log(0). Arithmetic is in double precision whatever the storage.
 */

export type Logits = Float32Array | Float64Array;

/** Running sums a batch adds to. */
export interface LossStats {
  /** Summed cross-entropy. */
  loss: number;
  /** Rows whose argmax (the first maximum) is the label. */
  correct: number;
}

/**
 * In place: row b of z becomes δ_b = softmax(z_b) − onehot(label_b), the gradient of the row's
 * cross-entropy with respect to its logits. Adds the rows' loss and correct count to `stats`, and
 * Σ_b δ_b to `deltaSum` (length ≥ C; the gradient of the bias and of any feature shift).
 */
export function softmaxCrossEntropyGrad(
  z: Logits,
  stride: number,
  labels: Int32Array,
  label0: number,
  B: number,
  C: number,
  stats: LossStats,
  deltaSum: Logits,
): void {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const o = b * stride;
    let max = z[o]!;
    let arg = 0;
    for (let c = 1; c < C; c++) {
      const v = z[o + c]!;
      if (v > max) {
        max = v;
        arg = c;
      }
    }
    const label = labels[label0 + b]!;
    const zLabel = z[o + label]!;
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(z[o + c]! - max);
      z[o + c] = e;
      sum += e;
    }
    loss += Math.log(sum) + max - zLabel;
    if (arg === label) correct++;
    const inv = 1 / sum;
    for (let c = 0; c < C; c++) {
      const d = c === label ? z[o + c]! * inv - 1 : z[o + c]! * inv;
      z[o + c] = d;
      deltaSum[c] += d;
    }
  }
  stats.loss += loss;
  stats.correct += correct;
}

/**
 * Scores without a gradient: adds each row's cross-entropy and correctness to `stats`, counts
 * `confusion[label·C + predicted]`, and writes each row's prediction (first argmax) to `predicted`.
 */
export function scoreRows(
  z: Logits,
  stride: number,
  labels: Int32Array,
  label0: number,
  B: number,
  C: number,
  stats: LossStats,
  confusion: Float64Array,
  predicted: Int32Array,
): void {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const o = b * stride;
    let max = z[o]!;
    let arg = 0;
    for (let c = 1; c < C; c++) {
      const v = z[o + c]!;
      if (v > max) {
        max = v;
        arg = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(z[o + c]! - max);
    const label = labels[label0 + b]!;
    loss += Math.log(sum) + max - z[o + label]!;
    if (arg === label) correct++;
    predicted[b] = arg;
    confusion[label * C + arg]! += 1;
  }
  stats.loss += loss;
  stats.correct += correct;
}
