/**
 * One example as a greyscale picture: for the terminal, Unicode upper-half blocks (each cell shows
 * two pixels, the top one in the foreground colour and the bottom one in the background) in the
 * 256-colour grey ramp; for files, an 8-bit greyscale PNG. The notebook's `imshow(dataset1[122])`.
 */
import { PNG } from 'pngjs';
import type { Examples } from '../pipeline/messages.js';
import { RxtrainError } from '../util/errors.js';

export interface GreyImage {
  width: number;
  height: number;
  /** Row-major, 0 black … 255 white. */
  grey: Uint8Array;
}

/** Example `index` of a batch (batch-relative) as grey levels. */
export function exampleImage(batch: Examples, index: number): GreyImage {
  const shape = batch.shape;
  let height: number;
  let width: number;
  if (shape.length === 1) [height, width] = [1, shape[0]!];
  else if (shape.length === 2 || (shape.length === 3 && shape[2] === 1))
    [height, width] = [shape[0]!, shape[1]!];
  // Channels first (CIFAR's [3, 32, 32]): the channels one under another, as grey.
  else if (shape.length === 3) [height, width] = [shape[0]! * shape[1]!, shape[2]!];
  else throw new RxtrainError('E_USAGE', `cannot draw an example of shape [${shape.join(', ')}] as an image`);
  const row = batch.data.subarray(index * batch.width, (index + 1) * batch.width);
  return { width, height, grey: toGrey(row) };
}

/** Bytes are grey levels already; other values are stretched from their min–max to 0–255. */
function toGrey(values: Uint8Array | Float32Array): Uint8Array {
  if (values instanceof Uint8Array) return Uint8Array.from(values);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  return Uint8Array.from(values, (v) => (span > 0 ? Math.round(((v - lo) / span) * 255) : 0));
}

/** The nearest colour of xterm's 256-colour palette that is grey: black 16, white 231, ramp 232–255. */
function xtermGrey(level: number): number {
  // The ramp 232–255 holds levels 8, 18, …, 238.
  if (level < 4) return 16;
  if (level > 246) return 231;
  return 232 + Math.min(23, Math.max(0, Math.round((level - 8) / 10)));
}

/**
 * The image as terminal lines, two pixel rows per line. With `color`, true greyscale; without
 * (NO_COLOR), each pixel is on or off at half brightness, drawn with ▀ ▄ █ and space.
 */
export function halfBlocks(image: GreyImage, options: { color: boolean }): string {
  const { width, height, grey } = image;
  const lines: string[] = [];
  for (let y = 0; y < height; y += 2) {
    let line = '';
    let fg = '';
    let bg = '';
    for (let x = 0; x < width; x++) {
      const top = grey[y * width + x]!;
      const bottom = y + 1 < height ? grey[(y + 1) * width + x]! : undefined;
      if (options.color) {
        // Escape codes only where the colour changes.
        const f = `\x1b[38;5;${xtermGrey(top)}m`;
        const b = bottom === undefined ? '\x1b[49m' : `\x1b[48;5;${xtermGrey(bottom)}m`;
        line += `${f === fg ? '' : f}${b === bg ? '' : b}▀`;
        fg = f;
        bg = b;
      } else {
        const t = top >= 128;
        const b = bottom !== undefined && bottom >= 128;
        line += t && b ? '█' : t ? '▀' : b ? '▄' : ' ';
      }
    }
    lines.push(options.color ? `${line}\x1b[0m` : line);
  }
  return `${lines.join('\n')}\n`;
}

/** An 8-bit greyscale PNG, each pixel drawn as a `scale` × `scale` square. */
export function encodePng(image: GreyImage, scale = 1): Buffer {
  const width = image.width * scale;
  const height = image.height * scale;
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const g = image.grey[Math.floor(y / scale) * image.width + Math.floor(x / scale)]!;
      const o = 4 * (y * width + x);
      png.data[o] = g;
      png.data[o + 1] = g;
      png.data[o + 2] = g;
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png, { colorType: 0 });
}
