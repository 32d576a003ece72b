/**
 * The softmax-regression model as files, beside its kernel: `weights.f32` (float32 little-endian,
 * row-major [rows, classes], the last row the bias when `bias`) and `model.json` describing it.
 * Pure: bytes and JSON in, bytes and JSON out; the run directory writes and reads the files.
 */
import { createHash } from 'node:crypto';
import { RxtrainError } from '../util/errors.js';
import { littleEndianBytes } from '../util/packed.js';
import type { FeatureTransform } from './features.js';

export const MODEL_FORMAT = 'rxtrain-softmax-regression/1';

export interface SoftmaxModel {
  weights: Float32Array;
  rows: number;
  classes: number;
  step: number;
  transform: FeatureTransform;
  /** Shape of one input example before flattening, e.g. [28, 28] or [3, 32, 32]. */
  inputShape?: readonly number[];
  /** A name per class, when the data has them. */
  classNames?: readonly string[];
}

/** The two files of a model, and the weights' sha256. */
export function encodeSoftmaxModel(model: SoftmaxModel): {
  weights: Uint8Array;
  json: string;
  sha256: string;
} {
  const bytes = littleEndianBytes(model.weights);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const t = model.transform;
  const json = JSON.stringify(
    {
      format: MODEL_FORMAT,
      weights: 'weights.f32',
      dtype: 'float32',
      byteOrder: 'little-endian',
      layout: 'row-major [rows, classes]; the last row is the bias when bias is true',
      rows: model.rows,
      classes: model.classes,
      ...(model.inputShape ? { inputShape: model.inputShape } : {}),
      ...(model.classNames ? { classNames: model.classNames } : {}),
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

/** What model.json says, as read back. */
export interface ModelDescription {
  weights?: string;
  dtype?: string;
  rows?: number;
  classes?: number;
  step?: number;
  features?: { width?: number; bias?: boolean };
}

/** Weights and shape from model.json's description and weights.f32's bytes, checked against each other. */
export function decodeSoftmaxModel(
  meta: ModelDescription,
  bytes: Uint8Array,
  files: { model: string; weights: string },
): { rows: number; classes: number; features: number; bias: boolean; weights: Float32Array; step: number } {
  const { rows, classes } = meta;
  if (!Number.isInteger(rows) || !Number.isInteger(classes) || rows! < 1 || classes! < 1)
    throw new RxtrainError('E_DATA', `${files.model}: rows and classes must be positive integers`);
  if (meta.dtype !== undefined && meta.dtype !== 'float32')
    throw new RxtrainError('E_DATA', `${files.model}: dtype ${meta.dtype} (only float32 is known)`);
  const expected = rows! * classes! * 4;
  if (bytes.byteLength !== expected)
    throw new RxtrainError(
      'E_DATA',
      `${files.weights}: ${bytes.byteLength} bytes, but model.json says ${rows}×${classes} float32 (${expected} bytes)`,
    );
  // weights.f32 is little-endian; a DataView reads it right on any host.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const weights = new Float32Array(rows! * classes!);
  for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(i * 4, true);
  const bias = meta.features?.bias ?? false;
  const features = meta.features?.width ?? rows! - (bias ? 1 : 0);
  if (features + (bias ? 1 : 0) !== rows)
    throw new RxtrainError(
      'E_DATA',
      `${files.model}: ${features} features${bias ? ' and a bias' : ''} do not make ${rows} rows`,
    );
  return { rows: rows!, classes: classes!, features, bias, weights, step: meta.step ?? 0 };
}
