/**
 * A set of byte rows kept packed — the positions (u16) and the bytes of their non-zeros — for a
 * kernel that reads the same rows again and again: the evaluator scores the test split at every
 * evaluation. Finding the non-zeros of a row costs more than using them (the sparsifier scans
 * every byte of all 784 to find MNIST's ~150), so a set that is evaluated eleven times is better
 * scanned once: each evaluation then only widens the packed entries (simd/softmaxRegression.wat:
 * packU8, expandU8), and the logits come out the same to the bit.
 *
 * A set is kept only while packing makes it smaller than its rows (3 bytes per non-zero against 1
 * per value: fewer than a third non-zero, as in MNIST's ~19%), so keeping one at most doubles the
 * memory of a set that is already held whole; denser sets are scored from their rows as before.
 */

/** What the caller's kernel does for one chunk: pack rows row0 … row0+n−1 into its scratch. */
export type PackChunk = (
  row0: number,
  n: number,
) => {
  /** Non-zeros in the chunk. */
  count: number;
  /** Views of the kernel's scratch, holding at least `count` entries. */
  pos: Uint16Array;
  bytes: Uint8Array;
  /** n + 1 row offsets into the chunk's entries, from 0. */
  offs: Int32Array;
};

export class PackedRows {
  constructor(
    /** Rows kept. */
    readonly count: number,
    /** Positions of the non-zeros of row r: pos[offs[r] … offs[r+1]). */
    readonly pos: Uint16Array,
    /** Their bytes. */
    readonly bytes: Uint8Array,
    readonly offs: Int32Array,
  ) {}
}

/**
 * Pack rows 0 … count−1 of width values, chunkRows at a time, through `packChunk`; undefined as
 * soon as the packed entries would outgrow count·width bytes.
 */
export function packNonZeros(
  count: number,
  width: number,
  chunkRows: number,
  packChunk: PackChunk,
): PackedRows | undefined {
  const most = Math.floor((count * width) / 3);
  const pos = new Uint16Array(most);
  const bytes = new Uint8Array(most);
  const offs = new Int32Array(count + 1);
  let total = 0;
  for (let r = 0; r < count; r += chunkRows) {
    const n = Math.min(chunkRows, count - r);
    const chunk = packChunk(r, n);
    if (total + chunk.count > most) return undefined;
    pos.set(chunk.pos.subarray(0, chunk.count), total);
    bytes.set(chunk.bytes.subarray(0, chunk.count), total);
    for (let i = 1; i <= n; i++) offs[r + i] = total + chunk.offs[i]!;
    total += chunk.count;
  }
  // The capacity past `total` was never written: those pages stay untouched, costing no memory.
  return new PackedRows(count, pos.subarray(0, total), bytes.subarray(0, total), offs);
}
