/**
 * decodeIdx's pairing of one split's images file with its labels file as both stream in: records
 * are decoded as their bytes arrive, each image waits only for its label (and, with `classes:
 * auto`, for the class count), and batches go out in file order.
 */
import type { Emitter } from '../../flow/index.js';
import { IdxDecoder, idxIntegers, idxValues, transposeRecords } from '../../formats/idx.js';
import type { Examples, FileChunk, Message } from '../../pipeline/messages.js';
import { IdxError, RxtrainError } from '../../util/errors.js';
import type { LabelClasses } from './labelClasses.js';

export interface PairingSettings {
  splits: Record<string, { images: string; labels: string }>;
  transpose: boolean;
  maxPendingBytes: number;
}

export class SplitPairing {
  images?: IdxDecoder;
  labels?: IdxDecoder;
  private imagesSource = '';
  private labelsSource = '';
  private labelValues = new Int32Array(1024);
  private labelCount = 0;
  /** Decoded image rows not yet emitted, oldest first. */
  private pending: { start: number; count: number; data: Uint8Array | Float32Array }[] = [];
  private pendingBytes = 0;
  private emitted = 0;
  private ended = false;

  constructor(
    readonly split: string,
    private readonly settings: PairingSettings,
    private readonly classes: LabelClasses,
    /** Called once the split has ended, with its example count. */
    private readonly onEnd: (count: number) => void,
  ) {}

  claim(role: 'images' | 'labels', chunk: FileChunk): void {
    const existing = role === 'images' ? this.images : this.labels;
    if (existing) {
      throw new RxtrainError(
        'E_IDX_MISSING',
        `decodeIdx: two files match ${this.split}.${role}: ${existing.file} and ${chunk.source}`,
      );
    }
    const decoder = new IdxDecoder(chunk.source);
    if (role === 'images') {
      this.images = decoder;
      this.imagesSource = chunk.source;
    } else {
      this.labels = decoder;
      this.labelsSource = chunk.source;
    }
  }

  /** All of this split's labels are in. */
  get labelsComplete(): boolean {
    return this.labels?.complete === true;
  }

  /** Feed one chunk; returns the number of examples emitted. */
  feed(role: 'images' | 'labels', chunk: FileChunk, out: Emitter<Message>): number {
    const decoder = role === 'images' ? this.images! : this.labels!;
    const records = decoder.push(chunk.bytes);
    if (decoder.header) this.checkHeaders();
    if (records) {
      const h = decoder.header!;
      if (role === 'labels') this.addLabels(idxIntegers(h, records.bytes), records.start);
      else {
        let data = idxValues(h, records.bytes);
        if (this.settings.transpose) data = transposeRecords(data, records.count, h.recordShape);
        this.pending.push({ start: records.start, count: records.count, data });
        this.pendingBytes += data.byteLength;
      }
    }
    if (chunk.last) decoder.end();
    const n = this.emitReady(out);
    if (this.pendingBytes > this.settings.maxPendingBytes) {
      const waiting = this.classes.waitingFor
        ? `the ${this.classes.waitingFor} labels, which fix the class count (decodeIdx.classes: auto)`
        : `their labels (${this.labelsSource || 'labels file not seen yet'})`;
      throw new RxtrainError(
        'E_IDX_MISSING',
        `${this.imagesSource}: ${this.pendingBytes} bytes of ${this.split} images are waiting for ${waiting}; put the labels files first, give decodeIdx.classes, or raise decodeIdx.maxPendingBytes`,
      );
    }
    return n;
  }

  /** The class count just became known: check the labels that came before it. */
  recheckLabels(): void {
    this.checkLabels(this.labelValues.subarray(0, this.labelCount), 0);
  }

  private checkHeaders(): void {
    const li = this.labels?.header;
    const im = this.images?.header;
    if (li) {
      if (li.dims.length !== 1) {
        throw new IdxError(
          'E_IDX_SHAPE',
          this.labelsSource,
          3,
          `a labels file must have rank 1, this one has rank ${li.dims.length}`,
        );
      }
      if (li.dtype === 'f32' || li.dtype === 'f64') {
        throw new IdxError('E_IDX_DTYPE', this.labelsSource, 2, `labels must be integers, not ${li.dtype}`);
      }
    }
    if (im && this.settings.transpose && im.recordShape.length < 2) {
      throw new IdxError(
        'E_IDX_SHAPE',
        this.imagesSource,
        3,
        `decodeIdx.transpose swaps the last two axes of each image, but these records have shape [${im.recordShape.join(', ')}]`,
      );
    }
    if (li && im && li.count !== im.count) {
      throw new IdxError(
        'E_IDX_COUNT',
        this.labelsSource,
        4,
        `${this.split}: ${li.count} labels, but ${this.imagesSource} holds ${im.count} images (its byte 4)`,
      );
    }
  }

  private checkLabels(values: Int32Array, start: number): void {
    const bad = this.classes.check(values, this.split);
    if (bad < 0) return;
    const h = this.labels!.header!;
    throw new IdxError(
      'E_IDX_LABEL',
      this.labelsSource,
      h.headerBytes + (start + bad) * h.valueSize,
      this.classes.describe(values[bad]!, start + bad),
    );
  }

  private addLabels(values: Int32Array, start: number): void {
    this.checkLabels(values, start);
    // Grow as labels arrive, never from the header's claim.
    if (this.labelCount + values.length > this.labelValues.length) {
      let size = this.labelValues.length;
      while (size < this.labelCount + values.length) size *= 2;
      const grown = new Int32Array(size);
      grown.set(this.labelValues.subarray(0, this.labelCount));
      this.labelValues = grown;
    }
    this.labelValues.set(values, this.labelCount);
    this.labelCount += values.length;
  }

  /**
   * Emit every image row whose label has arrived (once the class count is known); then
   * `split-end` once both files are done.
   */
  emitReady(out: Emitter<Message>): number {
    const classes = this.classes.count;
    if (classes === undefined) return 0;
    let n = 0;
    const im = this.images?.header;
    const shape = im && this.settings.transpose ? swapLastAxes(im.recordShape) : im?.recordShape;
    while (this.pending.length > 0 && im) {
      const batch = this.pending[0]!;
      const ready = Math.min(batch.count, this.labelCount - batch.start);
      if (ready <= 0) break;
      const width = im.recordValues;
      const data = ready === batch.count ? batch.data : batch.data.slice(0, ready * width);
      const names = this.classes.names;
      const examples: Examples = {
        kind: 'examples',
        split: this.split,
        start: batch.start,
        count: ready,
        splitSize: im.count,
        shape: shape!,
        width,
        data,
        labels: this.labelValues.slice(batch.start, batch.start + ready),
        classes,
        ...(names ? { classNames: names } : {}),
        source: this.imagesSource,
      };
      out.push(examples);
      n += ready;
      this.emitted += ready;
      if (ready === batch.count) {
        this.pending.shift();
        this.pendingBytes -= batch.data.byteLength;
      } else {
        const rest = batch.data.subarray(ready * width);
        this.pendingBytes -= batch.data.byteLength - rest.byteLength;
        this.pending[0] = { start: batch.start + ready, count: batch.count - ready, data: rest };
      }
    }
    if (!this.ended && this.images?.complete && this.labels?.complete && this.emitted === im!.count) {
      this.ended = true;
      out.push({ kind: 'split-end', split: this.split, count: this.emitted });
      this.onEnd(this.emitted);
    }
    return n;
  }

  /** At end of input: both files must have been seen, in full. */
  checkComplete(): void {
    const missing = !this.images ? 'images' : !this.labels ? 'labels' : undefined;
    if (missing) {
      const glob = this.settings.splits[this.split]![missing];
      throw new RxtrainError(
        'E_IDX_MISSING',
        `decodeIdx: split ${this.split} has no ${missing} file (nothing matched ${glob}; found ${this.images?.file ?? this.labels?.file})`,
      );
    }
    this.images!.end();
    this.labels!.end();
  }
}

function swapLastAxes(shape: readonly number[]): number[] {
  const out = [...shape];
  [out[out.length - 2], out[out.length - 1]] = [out[out.length - 1]!, out[out.length - 2]!];
  return out;
}
