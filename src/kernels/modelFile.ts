/**
 * A trained model as files: `weights.f32` (every parameter, float32 little-endian, in the layout
 * of architecture.ts) and `model.json`, which describes it well enough to use it without rxtrain:
 *
 *   format        "rxtrain-model/2"
 *   model         "softmax" | "mlp", and `architecture`, e.g. "784 → 128 relu → 10"
 *   input         { shape: [28, 28] }: one example's raw values, before the feature transform
 *   features      the transform: feature j = x[j]·scale[j] + shift[j], then a 1 when bias
 *   layers        per layer { rows, cols, inputs, bias, offset, activation }: the weights of layer l
 *                 are weights.f32[offset … offset + rows·cols), row-major [rows, cols], the bias
 *                 row last; activation "relu" | "tanh" for hidden layers, "softmax" for the output
 *   classes       the number of classes, and `classNames` when the data named them
 *   step, sha256  the training step, and the sha256 of weights.f32
 * A softmax model also keeps format 1's `rows` (= its one layer's rows) for older readers.
 *
 * Pure: bytes and JSON in, bytes and JSON out; the run directory writes and reads the files.
 */
import { createHash } from 'node:crypto';
import { RxtrainError } from '../util/errors.js';
import { littleEndianBytes } from '../util/packed.js';
import {
  type Architecture,
  checkArchitecture,
  describeArchitecture,
  layerShapes,
  parameterCount,
} from './architecture.js';
import { type FeatureTransform, featureTransform } from './features.js';

export const MODEL_FORMAT = 'rxtrain-model/2';
/** model.json of softmax regression before the model was a setting. */
const FORMAT_1 = 'rxtrain-softmax-regression/1';

export interface TrainedModel {
  architecture: Architecture;
  weights: Float32Array;
  step: number;
  transform: FeatureTransform;
  /** Names of the classes, when the data gave them. */
  classNames?: readonly string[];
}

/** The two files of a model, and the weights' sha256. */
export function encodeModel(model: TrainedModel): { weights: Uint8Array; json: string; sha256: string } {
  const a = model.architecture;
  const bytes = littleEndianBytes(model.weights);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const t = model.transform;
  const layers = layerShapes(a);
  const json = JSON.stringify(
    {
      format: MODEL_FORMAT,
      model: a.type,
      architecture: describeArchitecture(a),
      weights: 'weights.f32',
      dtype: 'float32',
      byteOrder: 'little-endian',
      layout:
        'layers one after another from their offset, each row-major [rows, cols]: rows are its inputs, then its bias row when bias is true',
      input: { shape: a.inputShape },
      layers: layers.map((l) => ({
        rows: l.rows,
        cols: l.cols,
        inputs: l.rows - (l.bias ? 1 : 0),
        bias: l.bias,
        offset: l.offset,
        activation: l.activation,
      })),
      classes: a.classes,
      ...(model.classNames ? { classNames: model.classNames } : {}),
      ...(a.type === 'softmax' ? { rows: layers[0]!.rows } : {}),
      step: model.step,
      sha256,
      features: {
        width: t.width,
        bias: t.bias,
        formula: 'x[j] * scale[j] + shift[j]',
        scale: Array.from(t.scale),
        shift: t.shift ? Array.from(t.shift) : null,
      },
    },
    null,
    1,
  );
  return { weights: bytes, json, sha256 };
}

/** What model.json says, as read back (format 2, or format 1 of softmax regression). */
export interface ModelDescription {
  format?: string;
  model?: string;
  weights?: string;
  dtype?: string;
  input?: { shape?: number[] };
  layers?: { rows?: number; cols?: number; bias?: boolean; activation?: string }[];
  rows?: number;
  classes?: number;
  classNames?: string[];
  step?: number;
  features?: { width?: number; bias?: boolean; scale?: number[]; shift?: number[] | null };
}

/** The model from model.json's description and weights.f32's bytes, checked against each other. */
export function decodeModel(
  meta: ModelDescription,
  bytes: Uint8Array,
  files: { model: string; weights: string },
): TrainedModel {
  const bad = (what: string, file = files.model) => new RxtrainError('E_DATA', `${file}: ${what}`);
  if (meta.format !== undefined && meta.format !== MODEL_FORMAT && meta.format !== FORMAT_1)
    throw bad(`model format ${meta.format} is not known (this rxtrain reads ${MODEL_FORMAT})`);
  if (meta.dtype !== undefined && meta.dtype !== 'float32')
    throw bad(`dtype ${meta.dtype} (only float32 is known)`);
  const architecture = checkArchitecture(architectureOf(meta), files.model);
  const transform = transformOf(meta, architecture, bad);
  const expected = parameterCount(architecture);
  if (bytes.byteLength !== expected * 4)
    throw bad(
      `${bytes.byteLength} bytes, but model.json describes ${expected} float32 weights (${expected * 4} bytes)`,
      files.weights,
    );
  // weights.f32 is little-endian; a DataView reads it right on any host.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const weights = new Float32Array(expected);
  for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(i * 4, true);
  const names = meta.classNames;
  if (names !== undefined && (!Array.isArray(names) || names.length !== architecture.classes))
    throw bad(`classNames must list ${architecture.classes} names`);
  return { architecture, weights, step: meta.step ?? 0, transform, ...(names ? { classNames: names } : {}) };
}

/** The architecture model.json describes: its layers, or format 1's rows × classes. */
function architectureOf(meta: ModelDescription): unknown {
  const width = meta.features?.width;
  const bias = meta.features?.bias ?? false;
  const shape = meta.input?.shape ?? (width !== undefined ? [width] : undefined);
  const layers = meta.layers;
  if (!layers) {
    // format 1: one layer of rows × classes
    const rows = meta.rows;
    if (!Number.isInteger(rows) || !Number.isInteger(meta.classes))
      return { type: 'softmax', inputShape: shape, bias, classes: meta.classes };
    return {
      type: 'softmax',
      inputShape: shape ?? [rows! - (bias ? 1 : 0)],
      bias,
      hidden: [],
      classes: meta.classes,
    };
  }
  const hidden = layers.slice(0, -1).map((l) => l.cols);
  return {
    type: meta.model ?? (hidden.length ? 'mlp' : 'softmax'),
    inputShape: shape,
    bias: layers[0]?.bias ?? bias,
    hidden,
    activation: layers[0]?.activation,
    classes: meta.classes ?? layers.at(-1)?.cols,
  };
}

function transformOf(
  meta: ModelDescription,
  a: Architecture,
  bad: (what: string) => RxtrainError,
): FeatureTransform {
  const f = meta.features ?? {};
  const width = a.inputShape.reduce((x, y) => x * y, 1);
  if (f.width !== undefined && f.width !== width)
    throw bad(`features.width ${f.width}, but the input has ${width} values`);
  if ((f.bias ?? a.bias) !== a.bias) throw bad('features.bias disagrees with the first layer');
  const numbers = (xs: unknown, what: string) => {
    if (!Array.isArray(xs) || xs.length !== width || !xs.every((x) => typeof x === 'number'))
      throw bad(`features.${what} must list ${width} numbers`);
    return Float32Array.from(xs);
  };
  // format 1 files written before the scale was recorded cannot be used to predict; say so there
  const scale = f.scale === undefined ? new Float32Array(width).fill(Number.NaN) : numbers(f.scale, 'scale');
  const shift = f.shift == null ? null : numbers(f.shift, 'shift');
  return featureTransform({ width, scale, shift, bias: a.bias });
}
