/**
 * A compact in-memory set of examples of one split: raw values row-major in one typed array (bytes
 * stay bytes: 60,000 MNIST images take 47 MB) and labels beside them. It grows as batches arrive,
 * never from a header's claim, so a lying header costs nothing.
 *
 * Batches whose values lie one after another in one buffer (records decoded as views of a file
 * read in one block, or replayed from the data-stage cache) are not copied: the store's `data` is
 * a view spanning them. The first batch that does not continue the view turns it into a copy of
 * its own. Messages are never written to once emitted, so the view is as good as a copy.
 */
import { RxtrainError } from '../util/errors.js';
import type { Examples } from './messages.js';

export class ExampleStore {
  data: Uint8Array | Float32Array;
  labels: Int32Array;
  count = 0;
  width = 0;
  shape: readonly number[] = [];
  classes = 0;
  classNames: readonly string[] | undefined;
  private floats = false;
  /** `data` is a view of the batches' own buffer (see above), not an array of the store's. */
  private viewing = false;

  constructor(readonly split: string) {
    this.data = new Uint8Array(0);
    this.labels = new Int32Array(0);
  }

  add(batch: Examples): void {
    if (this.adopt(batch)) return;
    if (this.count === 0 && this.data.length === 0) {
      this.width = batch.width;
      this.shape = batch.shape;
      this.classes = batch.classes;
      this.classNames = batch.classNames;
      this.floats = batch.data instanceof Float32Array;
      // The header's count sizes the first allocation only up to a bound: growth covers the rest.
      const initial = Math.max(batch.count, Math.min(batch.splitSize ?? batch.count, 65536));
      this.data = this.floats ? new Float32Array(initial * this.width) : new Uint8Array(initial * this.width);
      this.labels = new Int32Array(initial);
    } else if (batch.width !== this.width || batch.data instanceof Float32Array !== this.floats) {
      throw new RxtrainError(
        'E_DATA',
        `${batch.source}: ${this.split} examples of width ${batch.width} cannot join examples of width ${this.width}`,
      );
    }
    const needed = this.count + batch.count;
    if (this.viewing || needed > this.labels.length) {
      this.viewing = false;
      let rows = Math.max(this.labels.length, Math.min(batch.splitSize ?? 0, 65536), 1);
      while (rows < needed) rows *= 2;
      const data = this.floats ? new Float32Array(rows * this.width) : new Uint8Array(rows * this.width);
      data.set(this.data.subarray(0, this.count * this.width));
      const labels = new Int32Array(rows);
      labels.set(this.labels.subarray(0, this.count));
      this.data = data;
      this.labels = labels;
    }
    this.data.set(batch.data as never, this.count * this.width);
    this.labels.set(batch.labels, this.count);
    this.count = needed;
  }

  /**
   * Take the batch as a view when it is the first one or continues the current view in the same
   * buffer; false when it has to be copied.
   */
  private adopt(batch: Examples): boolean {
    const data = batch.data;
    if (this.count === 0 && this.data.length === 0) {
      this.width = batch.width;
      this.shape = batch.shape;
      this.classes = batch.classes;
      this.classNames = batch.classNames;
      this.floats = data instanceof Float32Array;
      this.data = data;
      this.labels = batch.labels.slice();
      this.count = batch.count;
      this.viewing = true;
      return true;
    }
    const current = this.data;
    if (
      !this.viewing ||
      batch.width !== this.width ||
      data instanceof Float32Array !== this.floats ||
      data.buffer !== current.buffer ||
      data.byteOffset !== current.byteOffset + current.byteLength
    )
      return false;
    const ctor = this.floats ? Float32Array : Uint8Array;
    this.data = new ctor(current.buffer as ArrayBuffer, current.byteOffset, current.length + data.length);
    const needed = this.count + batch.count;
    if (needed > this.labels.length) {
      const labels = new Int32Array(Math.max(needed, 2 * this.labels.length));
      labels.set(this.labels.subarray(0, this.count));
      this.labels = labels;
    }
    this.labels.set(batch.labels, this.count);
    this.count = needed;
    return true;
  }

  /** Release the slack left by doubling, when it is worth a copy. */
  trim(): void {
    if (this.viewing) {
      if (this.labels.length > this.count) this.labels = this.labels.slice(0, this.count);
      return;
    }
    if (this.labels.length - this.count <= this.labels.length / 4) return;
    this.data = this.data.slice(0, this.count * this.width);
    this.labels = this.labels.slice(0, this.count);
  }

  /** Copy rows `indices[from … from+n)` into `data`/`labels` starting at row `at`. */
  gather(
    indices: ArrayLike<number>,
    from: number,
    n: number,
    data: Uint8Array | Float32Array,
    labels: Int32Array,
    at = 0,
  ): void {
    const w = this.width;
    for (let i = 0; i < n; i++) {
      const r = indices[from + i]!;
      data.set(this.data.subarray(r * w, r * w + w) as never, (at + i) * w);
      labels[at + i] = this.labels[r]!;
    }
  }

  /** A fresh buffer of `rows` rows of this store's value type. */
  allocate(rows: number): Uint8Array | Float32Array {
    return this.floats ? new Float32Array(rows * this.width) : new Uint8Array(rows * this.width);
  }
}
