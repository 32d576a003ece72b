/**
 * A set of byte rows kept packed — the positions (u16) and the bytes of their non-zeros — for a
 * kernel that reads the same rows again and again: the evaluator scores the test split at every
 * evaluation. Finding the non-zeros of a row costs more than using them (the sparsifier scans all
 * 784 bytes of an MNIST row for its ~150 non-zeros), so the first evaluation keeps what it finds
 * as it scores, and each later one only widens the packed entries (simd/softmaxRegression.wat:
 * sparsifyU8 writes the bytes beside the positions, expandU8 widens them): the same logits to the
 * bit.
 *
 * A set is kept only while packing makes it smaller than its rows (3 bytes per non-zero against 1
 * per value: fewer than a third non-zero, as in MNIST's ~19%), so keeping one at most doubles the
 * memory of a set that is already held whole; denser sets are scored from their rows as before.
 */

export class PackedRows {
  /** Positions of the non-zeros of row r: pos[offs[r] … offs[r+1]). */
  pos: Uint16Array;
  /** Their bytes. */
  bytes: Uint8Array;
  readonly offs: Int32Array;
  /** Rows packed so far, from row 0: the set is complete at `count`. */
  filled = 0;
  /** Packing would not shrink these rows: nothing is kept. */
  declined = false;
  private total = 0;
  /** Entries that fit in count·width bytes: past this, packing would not pay. */
  private readonly most: number;

  constructor(
    /** Rows in the set. */
    readonly count: number,
    width: number,
  ) {
    this.most = Math.floor((count * width) / 3);
    this.pos = new Uint16Array(0);
    this.bytes = new Uint8Array(0);
    this.offs = new Int32Array(count + 1);
  }

  get complete(): boolean {
    return this.filled === this.count;
  }

  /**
   * Append rows filled … filled+n−1: `found` non-zeros in pos/bytes, with n + 1 row offsets from
   * 0. When they would outgrow the rows' own bytes, the set is declined and its memory let go.
   */
  append(n: number, found: number, pos: Uint16Array, bytes: Uint8Array, offs: Int32Array): void {
    const at = this.total;
    if (this.declined) return;
    if (at + found > this.most) {
      this.declined = true;
      this.pos = new Uint16Array(0);
      this.bytes = new Uint8Array(0);
      return;
    }
    if (at + found > this.pos.length) this.grow(at + found, n);
    this.pos.set(pos.subarray(0, found), at);
    this.bytes.set(bytes.subarray(0, found), at);
    const row0 = this.filled;
    for (let i = 1; i <= n; i++) this.offs[row0 + i] = at + offs[i]!;
    this.total = at + found;
    this.filled = row0 + n;
    if (this.complete) {
      // The capacity past the total was never written (its pages never touched): views drop it.
      this.pos = this.pos.subarray(0, this.total);
      this.bytes = this.bytes.subarray(0, this.total);
    }
  }

  /**
   * Room for at least `need` entries: the whole set at the density seen so far and a quarter more
   * (once, as a rule: the first chunk's density is the set's, near enough), at most `most`.
   */
  private grow(need: number, rows: number): void {
    const filled = this.filled + rows;
    const estimate = Math.ceil((need / filled) * this.count * 1.25);
    const size = Math.min(this.most, Math.max(need, estimate, 2 * this.pos.length));
    const pos = new Uint16Array(size);
    const bytes = new Uint8Array(size);
    pos.set(this.pos.subarray(0, this.total));
    bytes.set(this.bytes.subarray(0, this.total));
    this.pos = pos;
    this.bytes = bytes;
  }
}
