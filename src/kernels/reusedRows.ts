/**
 * Training rows kept in place: the softmax kernel's load of a batch from a table of byte rows
 * that its sampler has handed over for good (`SampleBlock.reusable`: nothing else reads the table
 * any more). The first time the kernel meets a row it finds the row's non-zeros as usual
 * (simd/softmaxRegression.wat: sparsifyU8) and then writes them over the row itself — their n
 * positions (u16) and their n bytes, 3n bytes where the row had `width` — when they fit, as they
 * do for any row less than a third non-zero (MNIST's are ~19%). From then on that row is read as
 * its 3n bytes and only widened (expandRows), which gives the same entries as finding them again,
 * so the logits and every update come out the same to the bit whichever rows are kept. A pass over
 * MNIST's training rows then reads ~450 bytes a row instead of 784 and skips the scan of all 784
 * for their non-zeros, and no byte of memory is added: the rows' own bytes hold them.
 *
 * A row that does not fit stays as it is and is scanned at every pass. Rows are processed in the
 * batch's order whatever their form, so the entries, and the sums over them, keep that order.
 */
import { gatherRows } from './gatherRows.js';
import type { KernelExports } from './simd/softmaxRegressionModule.js';

/** `forms[r]` of a row still in its raw bytes; otherwise the row's count of non-zeros. */
const RAW = 0xffff;

/** Bytes in a cache line: the stride of the loads that bring a row in (as gatherRows.ts). */
const LINE_BYTES = 64;

/** The parts of a softmax kernel's memory a reused load works in (softmaxRegression.ts). */
export interface ReuseScratch {
  ex: KernelExports;
  width: number;
  /** Byte stride of a weight row (Cp·4): what a position is widened by. */
  rowBytes: number;
  /** Module-memory offsets. */
  at: Record<'x' | 'pos' | 'bytes' | 'idx' | 'val' | 'offs' | 'scale' | 'lut' | 'blocks' | 'bounds', number>;
  /** Raw rows, one after another (at.x). */
  xBytes: Uint8Array;
  /** Kept rows' blocks (at.blocks), each at an even offset. */
  blocks: Uint8Array;
  bounds: Int32Array;
  offs: Int32Array;
  labels: Int32Array;
}

/** What the loads read ahead, kept so that no compiler can drop them as unused. */
let sink = 0;

/** A kernel's loads from tables handed over to it, and the forms of those tables' rows. */
export class ReusedRows {
  /** By table: `RAW`, or the count of non-zeros a row kept in place holds. */
  private readonly forms = new WeakMap<Uint8Array, Uint16Array>();

  constructor(private readonly k: ReuseScratch) {}

  /**
   * Load rows index[row0 … row0+n) of `table` (and their labels) into the kernel's entries (idx,
   * val, offs: ready for `logits`), keeping in place each raw row that fits; `uniform` is the
   * kernel's uniform scale (0: per-feature scales). Runs of rows of one form go through together.
   */
  load(
    table: Uint8Array,
    labels: Int32Array,
    index: Int32Array,
    row0: number,
    n: number,
    uniform: number,
  ): void {
    const { k } = this;
    let forms = this.forms.get(table);
    if (!forms) {
      forms = new Uint16Array(Math.floor(table.length / k.width)).fill(RAW);
      this.forms.set(table, forms);
    }
    const batch: Batch = { forms, table, labels, index, row0, uniform };
    let entries = 0;
    let b = 0;
    while (b < n) {
      const kept = forms[index[row0 + b]!]! !== RAW;
      let e = b + 1;
      while (e < n && (forms[index[row0 + e]!]! !== RAW) === kept) e++;
      entries = kept ? widenKept(k, batch, b, e, entries) : findAndKeep(k, batch, b, e, entries);
      b = e;
    }
  }
}

/** A load's rows: index[row0 …] of `table`, whose rows' forms are `forms`. */
interface Batch {
  forms: Uint16Array;
  table: Uint8Array;
  labels: Int32Array;
  index: Int32Array;
  row0: number;
  /** The kernel's uniform scale (0: per-feature scales). */
  uniform: number;
}

/**
 * Batch rows b … e−1, kept: their blocks gathered (each at an even offset), then widened into
 * entries from `entries` on; returns the end of their entries.
 */
function widenKept(k: ReuseScratch, batch: Batch, b: number, e: number, entries: number): number {
  const { forms, table, labels, index, row0 } = batch;
  const w = k.width;
  // Every line of every block first: loads that do not wait on each other (gatherRows.ts).
  let seen = 0;
  for (let i = b; i < e; i++) {
    const start = index[row0 + i]! * w;
    const end = start + 3 * forms[index[row0 + i]!]! - 1;
    if (end < start) continue;
    for (let j = start; j < end; j += LINE_BYTES) seen += table[j]!;
    seen += table[end]!;
  }
  sink = seen;
  let at = 0;
  for (let i = b; i < e; i++) {
    const r = index[row0 + i]!;
    const size = 3 * forms[r]!;
    k.bounds[i - b] = at;
    k.blocks.set(table.subarray(r * w, r * w + size), at);
    k.labels[i] = labels[r]!;
    at += size + (size & 1);
  }
  k.bounds[e - b] = at;
  const { ex, at: p } = k;
  return ex.expandRows(
    e - b,
    p.blocks,
    p.bounds,
    k.rowBytes,
    p.scale,
    batch.uniform,
    p.idx,
    p.val,
    p.offs + 4 * b,
    entries,
  );
}

/** Batch rows b … e−1, raw: gathered and scanned as ever, then each that fits kept in place. */
function findAndKeep(k: ReuseScratch, batch: Batch, b: number, e: number, entries: number): number {
  const { forms, table, labels, index, row0, uniform } = batch;
  const w = k.width;
  const m = e - b;
  gatherRows(table, labels, w, index, row0 + b, m, k.xBytes, k.labels.subarray(b));
  const { ex, at: p } = k;
  const found = ex.sparsifyU8(
    p.x,
    m,
    w,
    p.scale,
    uniform,
    k.rowBytes,
    p.lut,
    p.pos + 2 * entries,
    p.idx + 4 * entries,
    p.val + 4 * entries,
    p.bytes + entries,
    1,
    p.offs + 4 * b,
  );
  // sparsifyU8 counts these rows' entries from 0: from `entries` in the batch.
  const offs = k.offs;
  for (let i = b; i <= e; i++) offs[i] = offs[i]! + entries;
  // Each row's positions and bytes side by side, then over the row itself when they fit.
  ex.interleaveRows(m, p.pos, p.bytes, p.offs + 4 * b, p.blocks, p.bounds);
  const most = Math.floor(w / 3);
  for (let i = b; i < e; i++) {
    const count = offs[i + 1]! - offs[i]!;
    if (count > most) continue;
    const r = index[row0 + i]!;
    const at = k.bounds[i - b]!;
    table.set(k.blocks.subarray(at, at + 3 * count), r * w);
    forms[r] = count;
  }
  return entries + found;
}

/** The sum of the values the last load read ahead (nothing needs it: it only keeps the loads). */
export function reusedSink(): number {
  return sink;
}
