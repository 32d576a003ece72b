/**
 * Files of fixed-size binary records, decoded incrementally as bytes arrive. CIFAR-10's binary
 * version is one: each of the 10,000 records of a file is
 *
 *   byte  0          the label, 0–9
 *   bytes 1 … 3072   the pixels, channel-major: 1024 red, then 1024 green, then 1024 blue, each
 *                    channel row-major 32×32
 *
 * and CIFAR-100's has two label bytes (coarse, fine) before the same pixels. There is no header
 * and no count: a file holds as many records as its length divides into, and one that does not
 * divide evenly ends in a short record — a `RecordError` naming the file and the byte offset where
 * that record starts.
 */
import { RecordError } from '../util/errors.js';

export interface RecordLayout {
  /** Label bytes at the start of each record. */
  labelBytes: number;
  /** Which of them is the class label (CIFAR-100: 0 coarse, 1 fine). */
  labelByte: number;
  /** Value bytes after the labels (3072 for CIFAR's 3×32×32). */
  valueBytes: number;
}

/** A run of whole records: their labels and their values, one record after another. */
export interface DecodedRecords {
  /** Index of the first record within its file. */
  start: number;
  count: number;
  labels: Int32Array;
  values: Uint8Array;
}

/** Feeds on chunks of one file; hands back whole records as soon as their bytes are in. */
export class RecordDecoder {
  /** Bytes consumed so far. */
  received = 0;
  /** Whole records decoded so far. */
  records = 0;
  /** The file has ended, whole. */
  ended = false;
  private readonly recordBytes: number;
  /** The start of an incomplete record, carried to the next chunk (at most one record). */
  private readonly partial: Uint8Array;
  private partialLength = 0;

  constructor(
    readonly file: string,
    readonly layout: RecordLayout,
  ) {
    this.recordBytes = layout.labelBytes + layout.valueBytes;
    this.partial = new Uint8Array(this.recordBytes);
  }

  /** Byte offset of record `i`'s chosen label byte within the file. */
  labelOffset(i: number): number {
    return i * this.recordBytes + this.layout.labelByte;
  }

  /** Decode a chunk; returns the whole records it completes (possibly none). */
  push(chunk: Uint8Array): DecodedRecords | undefined {
    const { labelBytes, labelByte, valueBytes } = this.layout;
    const R = this.recordBytes;
    const whole = Math.floor((this.partialLength + chunk.length) / R);
    this.received += chunk.length;
    if (whole === 0) {
      this.partial.set(chunk, this.partialLength);
      this.partialLength += chunk.length;
      return undefined;
    }
    const labels = new Int32Array(whole);
    const values = new Uint8Array(whole * valueBytes);
    let at = 0; // position in chunk
    for (let r = 0; r < whole; r++) {
      let record: Uint8Array;
      if (r === 0 && this.partialLength > 0) {
        const rest = R - this.partialLength;
        this.partial.set(chunk.subarray(0, rest), this.partialLength);
        record = this.partial;
        at = rest;
        this.partialLength = 0;
      } else {
        record = chunk.subarray(at, at + R);
        at += R;
      }
      labels[r] = record[labelByte]!;
      values.set(record.subarray(labelBytes, R), r * valueBytes);
    }
    const tail = chunk.subarray(at);
    this.partial.set(tail, 0);
    this.partialLength = tail.length;
    const start = this.records;
    this.records += whole;
    return { start, count: whole, labels, values };
  }

  /** The file has ended: it must hold whole records, at least one. */
  end(): void {
    const R = this.recordBytes;
    if (this.partialLength > 0) {
      const at = this.records * R;
      throw new RecordError(
        'E_RECORD_SHORT',
        this.file,
        at,
        `record ${this.records} is short: the file ends after ${this.partialLength} of its ${R} bytes (${this.layout.labelBytes} label + ${this.layout.valueBytes} value bytes each; the file has ${this.received} bytes, not a multiple of ${R})`,
      );
    }
    if (this.records === 0) throw new RecordError('E_RECORD_SHORT', this.file, 0, 'empty file: no records');
    this.ended = true;
  }
}

/** Fixed-size records (CIFAR's binary layout) from labels and channel-major values. */
export function encodeRecords(labels: ArrayLike<number>, values: Uint8Array, labelBytes = 1): Uint8Array {
  const n = labels.length;
  const valueBytes = values.length / n;
  const R = labelBytes + valueBytes;
  const out = new Uint8Array(n * R);
  for (let i = 0; i < n; i++) {
    out.fill(labels[i]!, i * R, i * R + labelBytes);
    out.set(values.subarray(i * valueBytes, (i + 1) * valueBytes), i * R + labelBytes);
  }
  return out;
}
