/**
 * The linear part of softmax regression — logits = φ(x)·W and its gradient — on WebAssembly SIMD
 * over sparse rows (simd/softmaxRegression.wat). One instance owns one module's memory: the
 * weights, the optimiser's buffers and the scratch for up to `chunkRows` rows; nothing is
 * allocated per batch.
 *
 * Features are never materialised: φ(x)_j = x_j·scale_j + shift_j for j < width, then a constant
 * 1 when `bias`. Split as φ(x) = sparse(x) + dense, where sparse holds x_j·scale_j for the
 * non-zero x_j only, and dense = (shift, 1) is the same for every row, so
 *   logits_b = Σ_{x_bj ≠ 0} x_bj·scale_j·W_j + Σ_j dense_j·W_j
 *   ∂/∂W of Σ_b loss_b = Σ_b sparse(x_b) δ_bᵀ + dense (Σ_b δ_b)ᵀ
 * and the dense parts cost one pass over W per batch, not per row.
 *
 * Weight layout inside: rows × Cp float32, Cp = classes rounded up to a multiple of 4 (pad columns
 * stay 0). Outside (snapshots, checkpoints): rows × classes, the bias row last.
 */

import { RxtrainError } from '../util/errors.js';
import { bitPositionTable } from './bitPositions.js';
import type { FeatureTransform } from './features.js';
import { gatherRows } from './gatherRows.js';
import { PackedRows } from './packedRows.js';
import { ReusedRows } from './reusedRows.js';
import { type KernelExports, kernelModule, wasm } from './simd/softmaxRegressionModule.js';
import { type LossStats, tallyRows } from './tally.js';

export type { LossStats } from './tally.js';

export type Values = Uint8Array | Float32Array;

export interface KernelShape {
  /** Raw values per row. */
  width: number;
  classes: number;
  /** Append a constant-1 feature (the last weight row). */
  bias: boolean;
  /** Rows arrive as float32 rather than bytes. */
  floats: boolean;
}

export class SoftmaxRegressionKernel {
  readonly width: number;
  readonly classes: number;
  readonly rows: number;
  /** Classes padded to a multiple of 4: the row stride of W and of the logits. */
  readonly Cp: number;
  readonly floats: boolean;
  /** Most rows one forward pass takes. */
  readonly chunkRows: number;
  /** rows × Cp weights (a view of module memory). */
  readonly W: Float32Array;
  /** rows × Cp gradient buffer. */
  readonly G: Float32Array;
  /** rows × Cp momentum buffer. */
  readonly V: Float32Array;
  /** chunkRows × Cp logits; `softmax` turns them into δ, which `backward` reads. */
  readonly logits: Float32Array;
  /** Cp: Σ_b δ_b of the rows of the last `softmax` with a gradient. */
  readonly deltaSum: Float32Array;
  private readonly ex: KernelExports;
  private readonly p: Record<
    | 'W'
    | 'G'
    | 'V'
    | 'scale'
    | 'coef'
    | 'base'
    | 'dsum'
    | 'lut'
    | 'x'
    | 'labels'
    | 'pos'
    | 'bytes'
    | 'idx'
    | 'val'
    | 'offs'
    | 'logits'
    | 'stats'
    | 'blocks'
    | 'bounds',
    number
  >;
  private readonly labels: Int32Array;
  /** Per row after `softmax`: f32 Σ e^(z − max), f32 z_label − max, i32 argmax, pad. */
  private readonly rowSums: Float32Array;
  private readonly rowArgmax: Int32Array;
  /** The scale every feature shares, or 0 when scales differ per feature. */
  private uniformScale = 0;
  private readonly xBytes: Uint8Array;
  private readonly xFloats: Float32Array;
  private readonly scale: Float32Array;
  private readonly coef: Float32Array;
  /** Weight rows with a dense feature (shift or bias): [denseFrom, denseTo). */
  private denseFrom = 0;
  private denseTo = 0;
  private transform: FeatureTransform | undefined;
  private readonly posScratch: Uint16Array;
  private readonly bytesScratch: Uint8Array;
  private readonly offsView: Int32Array;
  /** The loaded rows are already sparse (`loadKept`, a reused load): `forward` skips the sparsifier. */
  private expanded = false;
  /** The sets `keep` packs (or declined to), by their rows array. */
  private readonly kept = new WeakMap<Values, PackedRows>();
  /** The set `keepLoaded` is filling: the sparsifier writes the non-zeros' bytes for it. */
  private filling: PackedRows | undefined;
  /** Loads from tables handed over (`load`'s `reusable`). */
  private readonly reused: ReusedRows;

  constructor(shape: KernelShape, chunkRows: number) {
    const { width, classes, bias, floats } = shape;
    if (width > 0xffff) {
      throw new RxtrainError(
        'E_DATA',
        `sgd: rows of ${width} values are too wide for the kernels (at most 65535)`,
      );
    }
    this.width = width;
    this.classes = classes;
    this.rows = width + (bias ? 1 : 0);
    this.Cp = Math.ceil(classes / 4) * 4;
    this.floats = floats;
    this.chunkRows = Math.max(1, chunkRows);
    const n = this.chunkRows;
    const weights = this.rows * this.Cp * 4;
    let top = 0;
    const take = (bytes: number) => {
      const at = top;
      top += Math.ceil(bytes / 64) * 64; // cache-line aligned
      return at;
    };
    this.p = {
      W: take(weights),
      G: take(weights),
      V: take(weights),
      scale: take(width * 4),
      coef: take(this.rows * 4),
      base: take(this.Cp * 4),
      dsum: take(this.Cp * 4),
      lut: take(256 * 16),
      x: take(n * width * (floats ? 4 : 1) + 16),
      labels: take(n * 4),
      // the sparsifier writes up to 8 entries past the last one
      pos: take((n * width + 8) * 2),
      bytes: take(n * width + 16),
      idx: take((n * width + 8) * 4),
      val: take((n * width + 8) * 4),
      offs: take((n + 1) * 4),
      logits: take(n * this.Cp * 4),
      stats: take(n * 16),
      // rows' blocks (reusedRows.ts): 3·width + 1 bytes at most (a row too dense to keep), slack
      blocks: take(n * (3 * width + 2) + 32),
      bounds: take((n + 1) * 4),
    };
    const instance = new wasm.Instance(kernelModule(), {});
    this.ex = instance.exports as unknown as KernelExports;
    const pages = Math.ceil(top / 65536);
    const have = this.ex.memory.buffer.byteLength / 65536;
    if (pages > have) this.ex.memory.grow(pages - have);
    const buffer = this.ex.memory.buffer;
    const f32 = (at: number, length: number) => new Float32Array(buffer, at, length);
    this.W = f32(this.p.W, this.rows * this.Cp);
    this.G = f32(this.p.G, this.rows * this.Cp);
    this.V = f32(this.p.V, this.rows * this.Cp);
    this.scale = f32(this.p.scale, width);
    this.coef = f32(this.p.coef, this.rows);
    this.deltaSum = f32(this.p.dsum, this.Cp);
    this.logits = f32(this.p.logits, n * this.Cp);
    this.labels = new Int32Array(buffer, this.p.labels, n);
    this.rowSums = f32(this.p.stats, n * 4);
    this.rowArgmax = new Int32Array(buffer, this.p.stats, n * 4);
    this.xBytes = new Uint8Array(buffer, this.p.x, n * width);
    this.xFloats = floats ? f32(this.p.x, n * width) : new Float32Array(0);
    new Uint16Array(buffer, this.p.lut, 256 * 8).set(bitPositionTable());
    this.posScratch = new Uint16Array(buffer, this.p.pos, n * width + 8);
    this.bytesScratch = new Uint8Array(buffer, this.p.bytes, n * width + 16);
    this.offsView = new Int32Array(buffer, this.p.offs, n + 1);
    this.reused = new ReusedRows({
      ex: this.ex,
      width,
      rowBytes: this.Cp * 4,
      at: this.p,
      xBytes: this.xBytes,
      blocks: new Uint8Array(buffer, this.p.blocks, n * (3 * width + 2) + 32),
      bounds: new Int32Array(buffer, this.p.bounds, n + 1),
      offs: this.offsView,
      labels: this.labels,
    });
  }

  /** Use feature transform t (its scale, shift and bias) from now on. */
  setTransform(t: FeatureTransform): void {
    if (t === this.transform) return;
    if (t.width !== this.width || t.bias !== this.rows > this.width) {
      throw new RxtrainError(
        'E_DATA',
        `a feature transform of width ${t.width} reached a ${this.width}-wide model`,
      );
    }
    this.transform = t;
    this.scale.set(t.scale);
    const s0 = t.scale[0] ?? 0;
    this.uniformScale = s0 > 0 && t.scale.every((v) => v === s0) ? s0 : 0;
    this.coef.fill(0);
    if (t.shift) this.coef.set(t.shift);
    if (t.bias) this.coef[this.width] = 1;
    this.denseFrom = t.shift ? 0 : this.width;
    this.denseTo = this.rows;
  }

  /** Copy rows×classes weights in. */
  writeWeights(weights: Float32Array): void {
    packRows(weights, this.classes, this.W, this.Cp, this.rows);
  }

  /** Copy the weights out as rows×classes. */
  readWeights(out: Float32Array = new Float32Array(this.rows * this.classes)): Float32Array {
    packRows(this.W, this.Cp, out, this.classes, this.rows);
    return out;
  }

  writeVelocity(v: Float32Array): void {
    packRows(v, this.classes, this.V, this.Cp, this.rows);
  }

  readVelocity(out: Float32Array = new Float32Array(this.rows * this.classes)): Float32Array {
    packRows(this.V, this.Cp, out, this.classes, this.rows);
    return out;
  }

  /**
   * Copy n rows of x (width values each) and their labels to kernel rows 0 … n−1: rows
   * row0 … row0+n−1, or, with `index`, rows index[row0] … index[row0+n−1] (a sampler's block of
   * row numbers into its table). With `reusable` (the table is handed over: nothing else reads
   * it), byte rows are found at once and kept in place in the table as they are met
   * (reusedRows.ts); the results are the same.
   */
  load(x: Values, labels: Int32Array, row0: number, n: number, index?: Int32Array, reusable = false): void {
    const w = this.width;
    if (n > this.chunkRows) throw new RangeError(`load: ${n} rows exceed ${this.chunkRows}`);
    const target = this.floats ? this.xFloats : this.xBytes;
    this.expanded = false;
    if (reusable && index && x instanceof Uint8Array) {
      this.reused.load(x, labels, index, row0, n, this.uniformScale);
      this.expanded = true;
      return;
    }
    if (!index) {
      target.set(x.subarray(row0 * w, (row0 + n) * w) as never);
      this.labels.set(labels.subarray(row0, row0 + n));
      return;
    }
    gatherRows(x, labels, w, index, row0, n, target, this.labels);
  }

  /**
   * The packed form (packedRows.ts) of rows 0 … count−1 of byte rows x, complete or being filled
   * by `keepLoaded`; the same object for the same rows again. Undefined for float rows, or once
   * packing turned out not to shrink them.
   */
  keep(x: Values, count: number): PackedRows | undefined {
    if (this.floats || !(x instanceof Uint8Array)) return undefined;
    let rows = this.kept.get(x);
    if (!rows || rows.count !== count) {
      rows = new PackedRows(count, this.width);
      this.kept.set(x, rows);
    }
    if (rows.declined) return undefined;
    if (!rows.complete) this.filling = rows;
    return rows;
  }

  /**
   * After `load` and `forward` of rows row0 … row0+n−1 of the set `rows` is being filled with:
   * keep their non-zeros, which the sparsifier has just found (rows are kept in order from 0).
   */
  keepLoaded(rows: PackedRows, row0: number, n: number): void {
    if (this.expanded || rows !== this.filling || row0 !== rows.filled) return;
    rows.append(n, this.offsView[n]!, this.posScratch, this.bytesScratch, this.offsView);
    if (rows.complete || rows.declined) this.filling = undefined;
  }

  /** Load rows row0 … row0+n−1 of a set `keep` packed, and their labels, ready for `forward`. */
  loadKept(rows: PackedRows, labels: Int32Array, row0: number, n: number): void {
    if (n > this.chunkRows) throw new RangeError(`loadKept: ${n} rows exceed ${this.chunkRows}`);
    const { ex, p } = this;
    const from = rows.offs[row0]!;
    const to = rows.offs[row0 + n]!;
    this.posScratch.set(rows.pos.subarray(from, to));
    this.xBytes.set(rows.bytes.subarray(from, to));
    for (let i = 0; i <= n; i++) this.offsView[i] = rows.offs[row0 + i]! - from;
    this.labels.set(labels.subarray(row0, row0 + n));
    ex.expandU8(p.pos, p.x, to - from, this.Cp * 4, p.scale, this.uniformScale, p.idx, p.val);
    this.expanded = true;
  }

  /** logits[b] = φ(x_b)·W for the first n loaded rows, with the current weights. */
  forward(n: number): void {
    const { ex, p } = this;
    const rowBytes = this.Cp * 4;
    // After loadKept the rows' non-zeros are in idx/val/offs already.
    if (this.floats && !this.expanded)
      ex.sparsifyF32(p.x, n, this.width, p.scale, rowBytes, p.idx, p.val, p.offs);
    else if (!this.expanded)
      ex.sparsifyU8(
        p.x,
        n,
        this.width,
        p.scale,
        this.uniformScale,
        rowBytes,
        p.lut,
        p.pos,
        p.idx,
        p.val,
        p.bytes,
        this.filling ? 1 : 0,
        p.offs,
      );
    ex.rowsDot(p.W, this.Cp, p.coef, this.denseFrom, this.denseTo, p.base);
    ex.logits(n, p.W, this.Cp, p.base, p.idx, p.val, p.offs, p.logits);
  }

  /**
   * Softmax cross-entropy of the first n rows of the last forward pass against their labels: adds
   * their summed loss and correct count to `stats`. With `grad`, the logits become
   * δ = softmax − onehot(label) and `deltaSum` Σ_b δ_b, ready for `backward`. Without, each row's
   * prediction (first argmax) goes to `predicted` and is counted in confusion[label·C + predicted].
   */
  softmax(
    n: number,
    grad: boolean,
    stats: LossStats,
    confusion?: Float64Array,
    predicted?: Int32Array,
  ): void {
    const { ex, p } = this;
    if (grad) this.deltaSum.fill(0);
    ex.softmax(p.logits, n, this.Cp, this.classes, p.labels, grad ? 1 : 0, p.dsum, p.stats);
    tallyRows(this.rowSums, this.rowArgmax, this.labels, n, this.classes, stats, confusion, predicted);
  }

  /** The logits of loaded row b after `forward` (before `softmax` turns them into δ). */
  logitsOf(b: number, out: Float64Array): void {
    for (let c = 0; c < this.classes; c++) out[c] = this.logits[b * this.Cp + c]!;
  }

  zeroGradient(): void {
    this.G.fill(0);
  }

  /**
   * target += alpha · Σ_b φ(x_b) δ_bᵀ over the first n rows of the last forward pass, with δ in
   * `logits` and Σ_b δ_b in `deltaSum`. target 'W' with alpha = −η is the plain SGD step.
   */
  backward(n: number, target: 'W' | 'G', alpha: number): void {
    const { ex, p } = this;
    const T = target === 'W' ? p.W : p.G;
    ex.scatter(n, T, this.Cp, p.logits, p.idx, p.val, p.offs, alpha);
    ex.rowsAxpy(T, this.Cp, p.coef, this.denseFrom, this.denseTo, alpha, p.dsum);
  }

  /** ‖G‖², in double precision. */
  gradientNormSquared(): number {
    return this.ex.sumSquares(this.p.G, this.rows * this.Cp);
  }

  /**
   * W ← W − lr·step from the gradient gscale·G (PyTorch's SGD rule; see applyUpdate in the .wat).
   * Weight decay applies to the feature rows, not to the bias row.
   */
  applyUpdate(lr: number, gscale: number, decay: number, momentum: number, nesterov: boolean): void {
    const { ex, p } = this;
    const stride = this.Cp * 4;
    const featureRows = this.width;
    const flag = nesterov ? 1 : 0;
    ex.applyUpdate(p.W, p.G, p.V, featureRows * this.Cp, lr, gscale, decay, momentum, flag);
    if (this.rows > featureRows) {
      const o = featureRows * stride;
      ex.applyUpdate(p.W + o, p.G + o, p.V + o, this.Cp, lr, gscale, 0, momentum, flag);
    }
  }
}

/** Copy `rows` rows of `from` (stride a) into `to` (stride b), zeroing any pad columns. */
function packRows(from: Float32Array, a: number, to: Float32Array, b: number, rows: number): void {
  const C = Math.min(a, b);
  if (a === b) {
    to.set(from.subarray(0, rows * a));
    return;
  }
  // A row at a time through native copies: this runs once per run (initial weights, a
  // checkpoint), where an element loop would stay in the interpreter (~4 ms for 785 × 12).
  if (b > C) to.fill(0, 0, rows * b);
  for (let r = 0; r < rows; r++) to.set(from.subarray(r * a, r * a + C), r * b);
}
