/**
 * The IDX file format (LeCun's MNIST format), decoded incrementally as bytes arrive.
 *
 *   bytes 0–1   0x00 0x00            magic
 *   byte  2     dtype                0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
 *   byte  3     rank                 number of dimensions, 1–4 here
 *   4·rank      dimensions           unsigned 32-bit big-endian; the first counts the records
 *   …           data                 big-endian values, row-major
 *
 * Nothing is allocated from what the header claims: records are emitted as their bytes arrive, so
 * a lying header cannot make the decoder reserve gigabytes; a file that ends early or runs long is
 * an `IdxError` naming the file and the byte offset.
 */
import { IdxError } from '../util/errors.js';

export const IDX_DTYPES = {
  8: { name: 'u8', size: 1 },
  9: { name: 'i8', size: 1 },
  11: { name: 'i16', size: 2 },
  12: { name: 'i32', size: 4 },
  13: { name: 'f32', size: 4 },
  14: { name: 'f64', size: 8 },
} as const;

export type IdxDtypeCode = keyof typeof IDX_DTYPES;
export type IdxDtype = (typeof IDX_DTYPES)[IdxDtypeCode]['name'];

export const MAX_RANK = 4;
/** Largest record (one image) accepted, in bytes: a bound on what a lying header can make us hold. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface IdxHeader {
  dtype: IdxDtype;
  dtypeCode: IdxDtypeCode;
  /** Bytes per value. */
  valueSize: number;
  dims: number[];
  /** Bytes of the header itself: 4 + 4·rank. */
  headerBytes: number;
  /** Records: the first dimension. */
  count: number;
  /** Shape of one record: the remaining dimensions. */
  recordShape: number[];
  /** Values per record. */
  recordValues: number;
  /** Bytes per record. */
  recordBytes: number;
  /** Total bytes the file must have. */
  fileBytes: number;
}

/** Parse a header from its first bytes; undefined if more bytes are needed. */
export function parseIdxHeader(bytes: Uint8Array, file: string): IdxHeader | undefined {
  if (bytes.length >= 2 && (bytes[0] !== 0 || bytes[1] !== 0)) {
    const shown = Array.from(bytes.subarray(0, Math.min(4, bytes.length)), (b) =>
      b.toString(16).padStart(2, '0'),
    );
    throw new IdxError(
      'E_IDX_MAGIC',
      file,
      0,
      `bad IDX magic 0x${shown.join('')} (an IDX file starts with 00 00)`,
    );
  }
  if (bytes.length < 4) return undefined;
  const code = bytes[2]!;
  const dtype = IDX_DTYPES[code as IdxDtypeCode];
  if (!dtype) {
    throw new IdxError(
      'E_IDX_DTYPE',
      file,
      2,
      `unknown IDX dtype 0x${code.toString(16).padStart(2, '0')} (expected 08 u8, 09 i8, 0b i16, 0c i32, 0d f32 or 0e f64)`,
    );
  }
  const rank = bytes[3]!;
  if (rank < 1 || rank > MAX_RANK) {
    throw new IdxError('E_IDX_RANK', file, 3, `IDX rank ${rank} is not supported (1–${MAX_RANK})`);
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const recordShape = dims.slice(1);
  const empty = recordShape.indexOf(0);
  if (empty >= 0) {
    // Zero-width records would make a file of any count complete with no data.
    throw new IdxError(
      'E_IDX_SHAPE',
      file,
      8 + 4 * empty,
      `dimension ${empty + 1} is 0: records would hold no values`,
    );
  }
  const recordValues = recordShape.reduce((a, b) => a * b, 1);
  const recordBytes = recordValues * dtype.size;
  if (recordBytes > MAX_RECORD_BYTES) {
    throw new IdxError(
      'E_IDX_SHAPE',
      file,
      8,
      `records of shape [${recordShape.join(', ')}] (${recordBytes} bytes each) exceed the ${MAX_RECORD_BYTES}-byte limit`,
    );
  }
  return {
    dtype: dtype.name,
    dtypeCode: code as IdxDtypeCode,
    valueSize: dtype.size,
    dims,
    headerBytes,
    count: dims[0]!,
    recordShape,
    recordValues,
    recordBytes,
    fileBytes: headerBytes + dims[0]! * recordBytes,
  };
}

/** A run of whole records, their raw big-endian bytes copied out of the input chunks. */
export interface IdxRecords {
  /** Index of the first record. */
  start: number;
  count: number;
  bytes: Uint8Array;
}

/** Feeds on chunks of one IDX file; hands back whole records as soon as their bytes are in. */
export class IdxDecoder {
  header: IdxHeader | undefined;
  /** Bytes consumed so far. */
  received = 0;
  /** Records emitted so far. */
  records = 0;
  private headBuffer = new Uint8Array(4 + 4 * MAX_RANK);
  private headLength = 0;
  private partial: Uint8Array | undefined;
  private partialLength = 0;
  /** The start of an incomplete record, still a view of the chunk it came in (not yet copied). */
  private tail: Uint8Array | undefined;

  constructor(readonly file: string) {}

  /** Decode a chunk; returns the whole records it completes (possibly none). */
  push(chunk: Uint8Array): IdxRecords | undefined {
    let bytes = chunk;
    if (!this.header) {
      const take = Math.min(bytes.length, this.headBuffer.length - this.headLength);
      this.headBuffer.set(bytes.subarray(0, take), this.headLength);
      const before = this.headLength;
      this.headLength += take;
      const header = parseIdxHeader(this.headBuffer.subarray(0, this.headLength), this.file);
      if (!header) {
        this.received += take;
        return undefined;
      }
      this.header = header;
      const used = header.headerBytes - before;
      this.received += used;
      bytes = bytes.subarray(used);
    }
    const h = this.header;
    if (bytes.length === 0) return undefined;
    const expectedRemaining = h.fileBytes - this.received;
    if (bytes.length > expectedRemaining) {
      throw new IdxError(
        'E_IDX_TRAILING',
        this.file,
        h.fileBytes,
        `unexpected data after the last of ${h.count} records (the header promises ${h.fileBytes} bytes)`,
      );
    }
    const start = this.records;
    const tail = this.tail;
    this.tail = undefined;
    if (tail && !(tail.buffer === bytes.buffer && tail.byteOffset + tail.byteLength === bytes.byteOffset)) {
      // The record goes on elsewhere: its start must be copied after all.
      this.keepPartial(tail);
    } else if (tail) {
      // The chunk continues the last one in the same block: the pending record is a view too.
      bytes = new Uint8Array(bytes.buffer, tail.byteOffset, tail.byteLength + bytes.byteLength);
      this.received -= tail.byteLength;
    }
    const partialBefore = this.partialLength;
    const available = partialBefore + bytes.length;
    const whole = Math.floor(available / h.recordBytes);
    let out: IdxRecords | undefined;
    if (whole > 0 && partialBefore === 0) {
      // Whole records straight from the chunk: a view, not a copy (chunks are never written to
      // once sent), and the start of a record cut at the chunk's end is kept as a view as well.
      const used = whole * h.recordBytes;
      if (bytes.length > used) this.tail = bytes.subarray(used);
      this.records += whole;
      out = { start, count: whole, bytes: bytes.subarray(0, used) };
    } else if (whole > 0) {
      const data = new Uint8Array(whole * h.recordBytes);
      if (partialBefore > 0) data.set(this.partial!.subarray(0, partialBefore), 0);
      const fromChunk = whole * h.recordBytes - partialBefore;
      data.set(bytes.subarray(0, fromChunk), partialBefore);
      this.partialLength = 0;
      const rest = bytes.subarray(fromChunk);
      if (rest.length > 0) this.keepPartial(rest);
      this.records += whole;
      out = { start, count: whole, bytes: data };
    } else if (partialBefore === 0) this.tail = bytes;
    else this.keepPartial(bytes);
    this.received += bytes.length;
    return out;
  }

  /**
   * Hold the start of an incomplete record. The buffer grows with the bytes that actually came
   * (doubling, capped at one record), so a header that claims huge records costs nothing until
   * the data is really there.
   */
  private keepPartial(bytes: Uint8Array): void {
    const need = this.partialLength + bytes.length;
    if (!this.partial || this.partial.length < need) {
      const size = Math.min(this.header!.recordBytes, Math.max(need, 2 * (this.partial?.length ?? 0), 4096));
      const grown = new Uint8Array(size);
      if (this.partial) grown.set(this.partial.subarray(0, this.partialLength));
      this.partial = grown;
    }
    this.partial.set(bytes, this.partialLength);
    this.partialLength += bytes.length;
  }

  /** The file has ended: it must hold exactly what the header promised. */
  end(): void {
    if (!this.header) {
      throw new IdxError(
        'E_IDX_TRUNCATED',
        this.file,
        this.received,
        this.received === 0 ? 'empty file (no IDX header)' : 'file ends inside the IDX header',
      );
    }
    if (this.received < this.header.fileBytes) {
      const h = this.header;
      throw new IdxError(
        'E_IDX_TRUNCATED',
        this.file,
        this.received,
        `file ends early: the header promises ${h.count} records of ${h.recordBytes} bytes (${h.fileBytes} bytes), got ${this.received}`,
      );
    }
  }

  get complete(): boolean {
    return !!this.header && this.received === this.header.fileBytes;
  }
}

/** Raw big-endian record bytes as numbers: bytes stay bytes, other dtypes become float32. */
export function idxValues(header: IdxHeader, bytes: Uint8Array): Uint8Array | Float32Array {
  if (header.dtype === 'u8') return bytes;
  const n = bytes.length / header.valueSize;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  readBigEndian(header.dtype, view, n, out);
  return out;
}

/** Raw label bytes as integers (callers reject float dtypes first). */
export function idxIntegers(header: IdxHeader, bytes: Uint8Array): Int32Array {
  const n = bytes.length / header.valueSize;
  const out = new Int32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  readBigEndian(header.dtype, view, n, out);
  return out;
}

function readBigEndian(dtype: IdxDtype, view: DataView, n: number, out: Float32Array | Int32Array): void {
  switch (dtype) {
    // Single bytes have no byte order: one native conversion, not a loop that runs once per file
    // in the interpreter (60,000 MNIST labels: ~2 ms, against ~0.05 ms).
    case 'u8':
      out.set(new Uint8Array(view.buffer, view.byteOffset, n));
      return;
    case 'i8':
      out.set(new Int8Array(view.buffer, view.byteOffset, n));
      return;
    case 'i16':
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, false);
      return;
    case 'i32':
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, false);
      return;
    case 'f32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, false);
      return;
    case 'f64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, false);
      return;
  }
}

/** Encode an IDX file (tests, the synthetic-data generator). */
export function encodeIdx(dtype: IdxDtype, dims: readonly number[], values: ArrayLike<number>): Uint8Array {
  const entry = Object.entries(IDX_DTYPES).find(([, d]) => d.name === dtype)!;
  const code = Number(entry[0]);
  const size = entry[1].size;
  const headerBytes = 4 + 4 * dims.length;
  const out = new Uint8Array(headerBytes + values.length * size);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = dims.length;
  for (const [i, d] of dims.entries()) view.setUint32(4 + 4 * i, d, false);
  for (let i = 0; i < values.length; i++) {
    const o = headerBytes + i * size;
    const v = values[i]!;
    if (dtype === 'u8') view.setUint8(o, v);
    else if (dtype === 'i8') view.setInt8(o, v);
    else if (dtype === 'i16') view.setInt16(o, v, false);
    else if (dtype === 'i32') view.setInt32(o, v, false);
    else if (dtype === 'f32') view.setFloat32(o, v, false);
    else view.setFloat64(o, v, false);
  }
  return out;
}

/**
 * Each record with its last two axes swapped: EMNIST stores its images transposed relative to
 * MNIST (tensorflow/datasets#812), so reading them back this way shows them upright. `shape` is
 * one record's shape, rank 2 or more; the records come back with the last two dimensions swapped.
 */
export function transposeRecords<T extends Uint8Array | Float32Array>(
  data: T,
  count: number,
  shape: readonly number[],
): T {
  const h = shape[shape.length - 2]!;
  const w = shape[shape.length - 1]!;
  const plane = h * w;
  const planes = count * (shape.reduce((a, b) => a * b, 1) / plane);
  const out = (
    data instanceof Float32Array ? new Float32Array(data.length) : new Uint8Array(data.length)
  ) as T;
  for (let p = 0; p < planes; p++) {
    const base = p * plane;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[base + x * h + y] = data[base + y * w + x]!;
    }
  }
  return out;
}
