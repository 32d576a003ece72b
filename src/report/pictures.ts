/**
 * Images for the report, as PNG data URLs: the learned weights (one template per class, or an
 * MLP's strongest first-layer units, in a diverging colour map) and input examples (grey, ink
 * dark on white).
 */
import { layerShapes } from '../kernels/architecture.js';
import { diverging } from './colormap.js';
import { pngDataUrl } from './png.js';
import type { RunModel } from './runDir.js';

/**
 * Height and width to draw `features` values as: the data's own 2-D shape when it fits (channels
 * of a [C, H, W] image stacked one under the other), else a square when there is one (784 →
 * 28×28), else one row.
 */
export function imageShape(features: number, dataShape?: readonly number[]): [number, number] {
  const last = dataShape?.[dataShape.length - 1];
  if (dataShape && dataShape.length >= 2 && dataShape.reduce((a, b) => a * b, 1) === features)
    return [features / last!, last!];
  const side = Math.round(Math.sqrt(features));
  return side * side === features ? [side, side] : [1, features];
}

export interface WeightTemplates {
  /** `classes`: softmax regression's template per class; `units`: an MLP's first-layer units. */
  kind: 'classes' | 'units';
  /** The colour scale runs from −scale (blue) through 0 (white) to +scale (red). */
  scale: number;
  /** The largest |weight|; values beyond `scale` are drawn at full colour. */
  max: number;
  shape: [number, number];
  /** A class (kind `classes`) or a hidden unit (kind `units`) each. */
  templates: { index: number; png: string; bias?: number; strength?: number }[];
  /** Units of the first hidden layer, of which `templates` shows the strongest. */
  units?: number;
}

/** Share of the weights inside the colour scale: a handful of extreme pixels must not wash out the rest. */
const SCALE_QUANTILE = 0.99;

/** How many of an MLP's first-layer units the report draws. */
export const UNITS_SHOWN = 16;

/** Images of `columns` of a [rows, cols] block (from `offset`), the first `features` rows of each. */
function columnImages(
  model: RunModel,
  layer: { offset: number; cols: number },
  columns: readonly number[],
  shape: [number, number],
): Pick<WeightTemplates, 'scale' | 'max'> & { pngs: string[] } {
  const { weights } = model;
  const features = shape[0] * shape[1];
  const at = (j: number, c: number) => weights[layer.offset + j * layer.cols + c]!;
  const magnitudes = Float32Array.from(
    columns.flatMap((c) => Array.from({ length: features }, (_, j) => Math.abs(at(j, c)))),
  ).sort();
  const max = magnitudes.at(-1) ?? 0;
  const scale =
    magnitudes[Math.min(magnitudes.length - 1, Math.floor(SCALE_QUANTILE * magnitudes.length))] ?? 0;
  const pngs = columns.map((c) => {
    const rgb = new Uint8Array(features * 3);
    for (let j = 0; j < features; j++) rgb.set(diverging(scale > 0 ? at(j, c) / scale : 0), j * 3);
    return pngDataUrl(shape[1], shape[0], rgb);
  });
  return { scale, max, pngs };
}

/**
 * Softmax regression: column c of the weight matrix, without the bias row, is the template of
 * class c — the logit of c is its dot product with the (normalised) input. One scale for all ten,
 * so that strong and weak templates can be compared: the 99th percentile of |w|, as a few border
 * pixels that are almost never lit take extreme values. The bias row (last, when present) is
 * given as a number.
 *
 * A multi-layer perceptron: the first hidden layer's units, each drawn as its incoming weights
 * over the input — the pattern it responds to. The UNITS_SHOWN strongest by
 * ‖incoming weights‖·‖outgoing weights‖ (what a unit can see times how loudly the next layer
 * hears it), strongest first, on one scale.
 */
export function weightTemplates(model: RunModel, dataShape?: readonly number[]): WeightTemplates {
  const a = model.architecture;
  const features = a.inputShape.reduce((x, y) => x * y, 1);
  const shape = imageShape(features, a.inputShape.length === 2 ? a.inputShape : dataShape);
  const [first, next] = layerShapes(a);
  if (!next) {
    const classes = Array.from({ length: a.classes }, (_, c) => c);
    const { scale, max, pngs } = columnImages(model, first!, classes, shape);
    const templates = classes.map((c) => ({
      index: c,
      png: pngs[c]!,
      bias: a.bias ? model.weights[features * a.classes + c] : undefined,
    }));
    return { kind: 'classes', scale, max, shape, templates };
  }
  const strength = (k: number) => {
    let incoming = 0;
    for (let j = 0; j < features; j++) incoming += model.weights[first!.offset + j * first!.cols + k]! ** 2;
    let outgoing = 0;
    for (let c = 0; c < next.cols; c++) outgoing += model.weights[next.offset + k * next.cols + c]! ** 2;
    return Math.sqrt(incoming * outgoing);
  };
  const units = Array.from({ length: first!.cols }, (_, k) => ({ k, s: strength(k) }))
    .sort((x, y) => y.s - x.s || x.k - y.k)
    .slice(0, UNITS_SHOWN);
  const { scale, max, pngs } = columnImages(
    model,
    first!,
    units.map((u) => u.k),
    shape,
  );
  const templates = units.map((u, i) => ({
    index: u.k,
    png: pngs[i]!,
    bias: a.bias ? model.weights[first!.offset + features * first!.cols + u.k] : undefined,
    strength: u.s,
  }));
  return { kind: 'units', scale, max, shape, templates, units: first!.cols };
}

/** One example as a grey image, ink dark on white; values scaled by the example's own range. */
export function examplePng(values: Uint8Array | Float32Array, shape: [number, number]): string {
  let lo = 0;
  let hi = 255;
  if (values instanceof Float32Array) {
    lo = Math.min(...values);
    hi = Math.max(...values);
  }
  const span = hi - lo || 1;
  const rgb = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const grey = 255 - Math.round((255 * (values[i]! - lo)) / span);
    rgb[i * 3] = grey;
    rgb[i * 3 + 1] = grey;
    rgb[i * 3 + 2] = grey;
  }
  return pngDataUrl(shape[1], shape[0], rgb);
}

/** A horizontal strip of the diverging map, for the colour bar under the templates. */
export function divergingBar(width = 128): string {
  const rgb = new Uint8Array(width * 3);
  for (let i = 0; i < width; i++) rgb.set(diverging((2 * i) / (width - 1) - 1), i * 3);
  return pngDataUrl(width, 1, rgb);
}
