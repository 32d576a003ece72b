/**
 * What `rxtrain predict` reads: PNG images (any size, converted to the model's input shape by
 * formats/pngGrey.ts), IDX files of examples of the model's shape, and directories of them. Each
 * input becomes a batch of rows or one error; a bad input never stops the others.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { idxValues, parseIdxHeader } from '../formats/idx.js';
import { decodePngGrey, isPng, resizeGrey } from '../formats/pngGrey.js';
import { RxtrainError } from '../util/errors.js';

export interface InputRows {
  /** The file, as given or found in a directory. */
  input: string;
  rows: Uint8Array | Float32Array;
  count: number;
  /** Whether the file holds one image (a PNG) or a list of examples (an IDX file, named `file[i]`). */
  list: boolean;
}

export type InputResult = InputRows | { input: string; error: RxtrainError };

export interface ReadOptions {
  /** The model's input: one example's shape. */
  shape: readonly number[];
  /** Dark ink on a light background: grey levels are turned over (255 − g) before anything else. */
  invert: boolean;
}

/** Every input in order: a directory's PNG and IDX files by name (numbers in names sort as numbers). */
export function* readInputs(paths: readonly string[], options: ReadOptions): Generator<InputResult> {
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (error) {
      yield { input: path, error: cannotRead(path, error) };
      continue;
    }
    if (!isDirectory) {
      yield readOne(path, options);
      continue;
    }
    const names = readdirSync(path)
      .filter((n) => !n.startsWith('.'))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    let found = 0;
    for (const name of names) {
      const file = join(path, name);
      if (!statSync(file).isFile()) continue;
      if (!/\.png$/i.test(name) && !looksLikeIdx(file)) continue; // a README beside the images
      found++;
      yield readOne(file, options);
    }
    if (found === 0)
      yield {
        input: path,
        error: new RxtrainError('E_INPUT', `${path}: no PNG or IDX files in this directory`),
      };
  }
}

function looksLikeIdx(file: string): boolean {
  try {
    const head = readFileSync(file).subarray(0, 4);
    return head.length === 4 && head[0] === 0 && head[1] === 0 && head[3]! >= 1 && head[3]! <= 4;
  } catch {
    return false;
  }
}

function cannotRead(file: string, error: unknown): RxtrainError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : code;
  return new RxtrainError('E_INPUT', `${file}: cannot read (${why})`);
}

function readOne(file: string, options: ReadOptions): InputResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    return { input: file, error: cannotRead(file, error) };
  }
  try {
    if (isPng(bytes)) return { input: file, rows: fromPng(bytes, file, options), count: 1, list: false };
    if (bytes.length >= 2 && bytes[0] === 0 && bytes[1] === 0) return fromIdx(bytes, file, options.shape);
    const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new RxtrainError(
      'E_INPUT',
      `${file}: neither a PNG image nor an IDX file (it starts ${head || 'empty'})`,
    );
  } catch (error) {
    if (error instanceof RxtrainError) return { input: file, error };
    throw error;
  }
}

/** Height and width of an image input: [H, W] or [H, W, 1]; a flat square input as a square. */
function imageSize(shape: readonly number[], file: string): [number, number] {
  if (shape.length === 2 || (shape.length === 3 && shape[2] === 1)) return [shape[0]!, shape[1]!];
  const side = Math.round(Math.sqrt(shape[0]!));
  if (shape.length === 1 && side * side === shape[0]) return [side, side];
  throw new RxtrainError(
    'E_INPUT',
    `${file}: the model takes examples of shape [${shape.join(', ')}], not images; give an IDX file`,
  );
}

function fromPng(bytes: Uint8Array, file: string, options: ReadOptions): Uint8Array {
  const [height, width] = imageSize(options.shape, file);
  const picture = decodePngGrey(bytes, file);
  if (options.invert) for (let i = 0; i < picture.grey.length; i++) picture.grey[i] = 255 - picture.grey[i]!;
  return resizeGrey(picture, height, width);
}

function fromIdx(bytes: Uint8Array, file: string, shape: readonly number[]): InputResult {
  const header = parseIdxHeader(bytes, file);
  if (!header) throw new RxtrainError('E_INPUT', `${file}: truncated IDX header (${bytes.length} bytes)`);
  const want = shape.reduce((x, y) => x * y, 1);
  const same =
    header.recordShape.length === shape.length
      ? header.recordShape.every((d, i) => d === shape[i])
      : shape.length === 1 && header.recordValues === want;
  if (!same)
    throw new RxtrainError(
      'E_INPUT',
      `${file}: examples of shape [${header.recordShape.join(', ')}], but the model takes [${shape.join(', ')}]`,
    );
  if (bytes.length < header.fileBytes)
    throw new RxtrainError(
      'E_INPUT',
      `${file}: truncated: the header promises ${header.count} examples (${header.fileBytes} bytes), the file has ${bytes.length} bytes`,
    );
  const rows = idxValues(header, bytes.subarray(header.headerBytes, header.fileBytes));
  return { input: file, rows, count: header.count, list: true };
}
