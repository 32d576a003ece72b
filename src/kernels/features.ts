/**
 * How features are computed from raw values, applied inside the kernels rather than by
 * materialising a float copy of the dataset: feature j of an example is
 * `x[j] * scale[j] + shift[j]`, followed by a constant 1 when `bias` is set.
 */
export interface FeatureTransform {
  /** Raw values per example (the flattened image). */
  width: number;
  /** Per-feature multiplier (x/255 is a scale of 1/255 everywhere). */
  scale: Float32Array;
  /** Per-feature offset, or null when every offset is 0 (zeros stay zeros: sparse kernels apply). */
  shift: Float32Array | null;
  /** Append a constant-1 input (the notebook's bias column). */
  bias: boolean;
  /** False while standardisation statistics are still being gathered. */
  ready: boolean;
}
