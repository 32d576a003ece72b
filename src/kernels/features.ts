/**
 * How features are computed from raw values, applied inside the kernels rather than by
 * materialising a float copy of the dataset: feature j of an example is
 * `x[j] * scale[j] + shift[j]`, followed by a constant 1 when `bias` is set.
 *
 * A transform is final when it is made, and never changes: the object is frozen, and its arrays
 * are made for it and never written afterwards (a typed array with elements cannot be frozen).
 */
export interface FeatureTransform {
  /** Raw values per example (the flattened image). */
  readonly width: number;
  /** Per-feature multiplier (x/255 is a scale of 1/255 everywhere). */
  readonly scale: Float32Array;
  /** Per-feature offset, or null when every offset is 0 (zeros stay zeros: sparse kernels apply). */
  readonly shift: Float32Array | null;
  /** Append a constant-1 input (the notebook's bias column). */
  readonly bias: boolean;
}

/** A finished transform of these parts: a frozen object holding exactly the four fields. */
export function featureTransform(parts: FeatureTransform): FeatureTransform {
  const { width, scale, shift, bias } = parts;
  return Object.freeze({ width, scale, shift, bias });
}

/** The largest feature magnitude the transform makes of byte inputs (0…255). */
export function byteFeatureReach(t: FeatureTransform): number {
  let reach = 0;
  for (let j = 0; j < t.width; j++)
    reach = Math.max(reach, Math.abs(255 * t.scale[j]!) + Math.abs(t.shift?.[j] ?? 0));
  return reach;
}
