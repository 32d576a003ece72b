/**
 * Where the MLP kernel keeps what in its module's memory (mlp.ts): every layer's weights,
 * gradient and momentum buffer (each one block over all layers), the loaded rows and their sparse
 * lists, and per layer its activations, δ, Σδ and the sparse list of its activations. Pointers are
 * byte offsets; nothing is allocated per batch.
 *
 * Inside, each layer's units are padded to a multiple of 4 — the row stride — and a hidden layer's
 * inputs are its predecessor's padded units, with its bias row after them. Pad columns, and the rows
 * that read padded units, stay 0.
 */
import { type Architecture, inputWidth, layerShapes } from './architecture.js';

/** One layer inside the module. Pointers are byte offsets into its memory. */
export interface Layer {
  /** Units, and the row stride (units padded to a multiple of 4). */
  units: number;
  stride: number;
  /** Rows inside: the inputs (a hidden input padded like its layer) and the bias row. */
  rows: number;
  /** Rows in the model-file layout, and where each lands inside (the bias row after the pad). */
  fileRows: number;
  rowInside: (fileRow: number) => number;
  /** Rows that carry a feature, before the bias row: weight decay applies to them. */
  featureRows: number;
  /** Float index of the layer's first weight in W, G and V. */
  at: number;
  /** chunkRows × stride: the activations of a hidden layer, or the output's logits (then δ). */
  out: number;
  /** chunkRows × stride: δ of a hidden layer (the output's δ replaces its logits in `out`). */
  delta: number;
  /** stride floats: Σ_b δ_b, the bias row's gradient per unit of alpha. */
  dsum: number;
  /** The non-zeros of `out` as the next layer's input (hidden layers only). */
  idx: number;
  val: number;
  offs: number;
}

/** The buffers every layer shares. */
export type MlpBuffers = Record<
  | 'W'
  | 'G'
  | 'V'
  | 'x'
  | 'labels'
  | 'pos'
  | 'bytes'
  | 'idx'
  | 'val'
  | 'offs'
  | 'scale'
  | 'coef'
  | 'base'
  | 'ones'
  | 'lut'
  | 'stats',
  number
>;

/** The layout for `chunkRows` rows of bytes (or of float32 with `floats`). */
export function mlpLayout(
  a: Architecture,
  floats: boolean,
  chunkRows: number,
): { buffers: MlpBuffers; layers: Layer[]; bytes: number; weightFloats: number; maxStride: number } {
  const n = chunkRows;
  const w = inputWidth(a);
  let top = 0;
  const take = (bytes: number) => {
    const at = top;
    top += Math.ceil(bytes / 64) * 64; // cache-line aligned
    return at;
  };
  // The layers' shapes inside; W, G and V are each one block over all layers.
  let floatsInW = 0;
  let inputStride = 0;
  const shapes = layerShapes(a).map((shape, l) => {
    const stride = Math.ceil(shape.cols / 4) * 4;
    const rows = l === 0 ? shape.rows : inputStride + 1;
    const inputs = shape.rows - (shape.bias ? 1 : 0);
    const padTo = l === 0 ? inputs : inputStride;
    const layer = { shape, stride, rows, at: floatsInW, padTo, inputs };
    floatsInW += rows * stride;
    inputStride = stride;
    return layer;
  });
  const maxStride = Math.max(...shapes.map((s) => s.stride));
  const buffers = {
    W: take(floatsInW * 4),
    G: take(floatsInW * 4),
    V: take(floatsInW * 4),
    x: take(n * w * (floats ? 4 : 1) + 16),
    labels: take(n * 4),
    // the sparsifier writes up to 8 entries past the last one
    pos: take((n * w + 8) * 2),
    bytes: take(n * w + 16),
    idx: take((n * w + 8) * 4),
    val: take((n * w + 8) * 4),
    offs: take((n + 1) * 4),
    scale: take(w * 4),
    coef: take((w + 1) * 4),
    base: take(shapes[0]!.stride * 4),
    ones: take((maxStride + 1) * 4),
    lut: take(256 * 16),
    stats: take(n * 16),
  };
  const last = shapes.length - 1;
  const layers: Layer[] = shapes.map(({ shape, stride, rows, at, padTo, inputs }, l) => {
    const hidden = l < last;
    const out = take(n * stride * 4);
    return {
      units: shape.cols,
      stride,
      rows,
      fileRows: shape.rows,
      // a hidden input's bias row comes after its padded units
      rowInside: (r: number) => (r < inputs ? r : padTo),
      featureRows: padTo,
      at,
      out,
      delta: hidden ? take(n * stride * 4) : out,
      dsum: take(stride * 4),
      idx: hidden ? take((n * stride + 8) * 4) : 0,
      val: hidden ? take((n * stride + 8) * 4) : 0,
      offs: hidden ? take((n + 1) * 4) : 0,
    };
  });
  return { buffers, layers, bytes: top, weightFloats: floatsInW, maxStride };
}
