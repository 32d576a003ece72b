/**
 * Cuts a stream of sample blocks into mini-batches of a fixed size, for any trainer.
 *
 * A batch that lies inside one block is not copied: it is the block's own rows (or, for a block
 * indexing the sampler's table, its row numbers). A batch that spans two blocks is gathered into
 * a buffer of its own: their row numbers, when the blocks index one table (whose rows may be in a
 * form only the kernel reads: `SampleBlock.reusable`), else the rows themselves. Batches never
 * span passes: `flush()` hands out a pass's last, smaller
 * batch when the next pass begins. The batcher also knows its read point — the block it is in and
 * how many of its samples it used — which is what a checkpoint records of the sampler.
 */
import type { ReadPoint } from './checkpoints.js';
import { type SampleBlock, sampleRow } from './messages.js';

/** Rows row0 … row0+n−1 of x and labels (with `rows`: the table rows rows[row0 …]). */
export interface MiniBatch {
  x: Uint8Array | Float32Array;
  labels: Int32Array;
  row0: number;
  n: number;
  rows?: Int32Array;
  /** The table x is handed over to the trainer for good (`SampleBlock.reusable`). */
  reusable?: boolean;
}

export class MiniBatcher {
  private block: SampleBlock | undefined;
  /** Samples of `block` used so far. */
  private used = 0;
  /** Samples gathered into the buffer so far. */
  private fill = 0;
  private x: Uint8Array | Float32Array | undefined;
  private readonly y: Int32Array;
  /** Row numbers gathered so far, when the gathered part indexes `table`. */
  private readonly picks: Int32Array;
  private table: SampleBlock | undefined;

  constructor(readonly size: number) {
    this.y = new Int32Array(size);
    this.picks = new Int32Array(size);
  }

  /** Start reading `block` (the previous one is used up). */
  start(block: SampleBlock): void {
    this.block = block;
    this.used = 0;
    if (!this.x) {
      const n = this.size * block.width;
      this.x = block.data instanceof Float32Array ? new Float32Array(n) : new Uint8Array(n);
    }
  }

  /** The next whole batch, or undefined when the block is used up (a part may wait in the buffer). */
  next(): MiniBatch | undefined {
    const block = this.block;
    if (!block) return undefined;
    const B = this.size;
    while (this.used < block.count) {
      const i = this.used;
      if (this.fill === 0 && block.count - i >= B) {
        // A whole batch inside the block: the kernel reads it straight from there.
        this.used += B;
        return {
          x: block.data,
          labels: block.labels,
          row0: i,
          n: B,
          rows: block.rows,
          ...(block.reusable ? { reusable: true } : {}),
        };
      }
      // A part gathered from another table (never, from one sampler) goes out on its own first.
      if (this.fill > 0 && this.table && (!block.rows || block.data !== this.table.data)) return this.flush();
      // A batch across blocks (or a pass's end) is gathered first.
      const n = Math.min(B - this.fill, block.count - i);
      if (block.rows) {
        this.table = block;
        this.picks.set(block.rows.subarray(i, i + n), this.fill);
      } else {
        const w = block.width;
        for (let k = 0; k < n; k++) {
          const r = sampleRow(block, i + k);
          this.x!.set(block.data.subarray(r * w, r * w + w) as never, (this.fill + k) * w);
          this.y[this.fill + k] = block.labels[r]!;
        }
      }
      this.fill += n;
      this.used += n;
      if (this.fill < B) continue;
      return this.flush();
    }
    return undefined;
  }

  /** The gathered part of a batch, as a smaller batch; undefined when none waits. */
  flush(): MiniBatch | undefined {
    if (this.fill === 0) return undefined;
    const n = this.fill;
    this.fill = 0;
    const table = this.table;
    this.table = undefined;
    if (!table) return { x: this.x!, labels: this.y, row0: 0, n };
    return {
      x: table.data,
      labels: table.labels,
      row0: 0,
      n,
      rows: this.picks,
      ...(table.reusable ? { reusable: true } : {}),
    };
  }

  /** Where the batcher stands in its input, for a checkpoint of the sampler. */
  readPoint(): ReadPoint | undefined {
    const b = this.block;
    return b && { stage: b.sampler, position: b.position, used: this.used };
  }
}
