/**
 * A PNG image of any size, colour type and bit depth as grey levels of a chosen size: how
 * `rxtrain predict` turns a picture into a model's input.
 *
 *   grey      0.299·R + 0.587·G + 0.114·B (ITU-R BT.601 luma) of the 8-bit channels (16-bit
 *             images are scaled down by pngjs), times alpha/255: transparent pixels are black,
 *             MNIST's background (its ink is white)
 *   size      stretched to height × width by area averaging: each output pixel is the mean of
 *             the input pixels it covers, weighted by how much of each it covers. An image
 *             already of that size is unchanged, and one magnified by a whole factor K (as
 *             `rxtrain inspect --scale K` draws) comes back exactly
 *   levels    rounded to whole grey levels 0–255, as the bytes of an IDX image are
 */
import { PNG } from 'pngjs';
import { RxtrainError } from '../util/errors.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

export interface GreyPicture {
  width: number;
  height: number;
  /** Row-major grey levels, 0 black … 255 white (fractions before rounding). */
  grey: Float64Array;
}

/** Decode a PNG to grey levels; E_INPUT naming `file` when it is not a valid PNG. */
export function decodePngGrey(bytes: Uint8Array, file: string): GreyPicture {
  let png: { width: number; height: number; data: Uint8Array };
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new RxtrainError('E_INPUT', `${file}: not a readable PNG image (${(error as Error).message})`);
  }
  const { width, height, data } = png;
  const grey = new Float64Array(width * height);
  for (let i = 0; i < grey.length; i++) {
    const o = 4 * i;
    const luma = 0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!;
    grey[i] = (luma * data[o + 3]!) / 255;
  }
  return { width, height, grey };
}

/**
 * For a line of n input pixels averaged down (or up) to m: for each output pixel, the input
 * pixels it covers and by how much (the weights of one output pixel sum to 1).
 */
function areaWeights(n: number, m: number): { from: number; weights: number[] }[] {
  const step = n / m;
  return Array.from({ length: m }, (_, o) => {
    const start = o * step;
    const end = start + step;
    const from = Math.floor(start);
    const weights: number[] = [];
    for (let i = from; i < Math.min(n, Math.ceil(end)); i++)
      weights.push((Math.min(end, i + 1) - Math.max(start, i)) / step);
    return { from, weights };
  });
}

/** `picture` stretched to height × width by area averaging, rounded to bytes. */
export function resizeGrey(picture: GreyPicture, height: number, width: number): Uint8Array {
  const { width: w0, height: h0, grey } = picture;
  const cols = areaWeights(w0, width);
  const rows = areaWeights(h0, height);
  // across each row first, then down each column
  const wide = new Float64Array(h0 * width);
  for (let y = 0; y < h0; y++)
    for (const [x, c] of cols.entries()) {
      let sum = 0;
      for (let k = 0; k < c.weights.length; k++) sum += c.weights[k]! * grey[y * w0 + c.from + k]!;
      wide[y * width + x] = sum;
    }
  const out = new Uint8Array(height * width);
  for (const [y, r] of rows.entries())
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = 0; k < r.weights.length; k++) sum += r.weights[k]! * wide[(r.from + k) * width + x]!;
      out[y * width + x] = Math.min(255, Math.max(0, Math.round(sum)));
    }
  return out;
}
