/** The softmax kernels' per-row results summed up: loss, correct count, predictions, confusion. */

/** Running sums a batch adds to. */
export interface LossStats {
  /** Summed cross-entropy. */
  loss: number;
  /** Rows whose argmax (the first maximum) is the label. */
  correct: number;
}

/**
 * Sum up the softmax kernel's per-row results (16 bytes per row: f32 Σ e^(z − max), f32
 * z_label − max, i32 argmax, pad; `rowStats` and `args` view the same bytes): the rows' cross-entropy and correct count into `stats`, each prediction
 * into `predicted` and confusion[label·C + predicted].
 */
export function tallyRows(
  rowStats: Float32Array,
  args: Int32Array,
  labels: Int32Array,
  n: number,
  C: number,
  stats: LossStats,
  confusion?: Float64Array,
  predicted?: Int32Array,
): void {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < n; b++) {
    // log Σ e^(z − max) − (z_label − max): never log(0), since the sum is at least 1
    loss += Math.log(rowStats[4 * b]!) - rowStats[4 * b + 1]!;
    const arg = args[4 * b + 2]!;
    const label = labels[b]!;
    if (arg === label) correct++;
    if (predicted) predicted[b] = arg;
    if (confusion) confusion[label * C + arg]! += 1;
  }
  stats.loss += loss;
  stats.correct += correct;
}
