/**
 * Images for the report, as PNG data URLs: the learned weight templates (one per class, in a
 * diverging colour map) and input examples (grey, ink dark on white).
 */
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
  /** The colour scale runs from −scale (blue) through 0 (white) to +scale (red). */
  scale: number;
  /** The largest |weight|; values beyond `scale` are drawn at full colour. */
  max: number;
  shape: [number, number];
  templates: { cls: number; png: string; bias?: number }[];
}

/** Share of the weights inside the colour scale: a handful of extreme pixels must not wash out the rest. */
const SCALE_QUANTILE = 0.99;

/**
 * Column c of the weight matrix, without the bias row, is the template of class c: the logit of c
 * is its dot product with the (normalised) input. One scale for all ten, so that strong and weak
 * templates can be compared — the 99th percentile of |w|, as a few border pixels that are almost
 * never lit take extreme values. The bias row (last, when present) is given as a number.
 */
export function weightTemplates(model: RunModel, dataShape?: readonly number[]): WeightTemplates {
  const { classes, features, weights } = model;
  const shape = imageShape(features, dataShape);
  const magnitudes = Float32Array.from(weights.subarray(0, features * classes), Math.abs).sort();
  const max = magnitudes.at(-1) ?? 0;
  const scale =
    magnitudes[Math.min(magnitudes.length - 1, Math.floor(SCALE_QUANTILE * magnitudes.length))] ?? 0;
  const templates: WeightTemplates['templates'] = [];
  for (let c = 0; c < classes; c++) {
    const rgb = new Uint8Array(features * 3);
    for (let j = 0; j < features; j++) {
      const colour = diverging(scale > 0 ? weights[j * classes + c]! / scale : 0);
      rgb.set(colour, j * 3);
    }
    templates.push({
      cls: c,
      png: pngDataUrl(shape[1], shape[0], rgb),
      bias: model.bias ? weights[features * classes + c] : undefined,
    });
  }
  return { scale, max, shape, templates };
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
