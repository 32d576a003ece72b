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
import { RxtrainError } from '../pipeline/errors.js';
import type { FeatureTransform } from '../pipeline/messages.js';
import { SOFTMAX_REGRESSION_WASM } from './simd/softmaxRegressionWasm.js';

export type Values = Uint8Array | Float32Array;

/** The part of the WebAssembly API used here (the project's lib settings do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  sparsifyU8(
    x: number,
    B: number,
    width: number,
    scale: number,
    rowBytes: number,
    lut: number,
    pos: number,
    idx: number,
    val: number,
    offs: number,
  ): number;
  sparsifyF32(
    x: number,
    B: number,
    width: number,
    scale: number,
    rowBytes: number,
    idx: number,
    val: number,
    offs: number,
  ): number;
  logits(
    B: number,
    W: number,
    Cp: number,
    base: number,
    idx: number,
    val: number,
    offs: number,
    out: number,
  ): void;
  scatter(
    B: number,
    T: number,
    Cp: number,
    delta: number,
    idx: number,
    val: number,
    offs: number,
    alpha: number,
  ): void;
  rowsDot(W: number, Cp: number, coef: number, j0: number, j1: number, out: number): void;
  rowsAxpy(T: number, Cp: number, coef: number, j0: number, j1: number, alpha: number, vec: number): void;
  sumSquares(p: number, n: number): number;
  applyUpdate(
    W: number,
    G: number,
    V: number,
    n: number,
    lr: number,
    gscale: number,
    decay: number,
    mu: number,
    nesterov: number,
  ): void;
}

let compiled: object | undefined;

/** Compiled once per process: 2 KB, so synchronous compilation is quick (and allowed in Node). */
function kernelModule(): object {
  compiled ??= new wasm.Module(Buffer.from(SOFTMAX_REGRESSION_WASM, 'base64'));
  return compiled;
}

/** For a u8 bit mask m < 256: the positions of its set bits as 8 u16 (the sparsifier's table). */
function bitPositionTable(): Uint16Array {
  const table = new Uint16Array(256 * 8);
  for (let m = 0; m < 256; m++) {
    let k = 0;
    for (let bit = 0; bit < 8; bit++) if (m & (1 << bit)) table[m * 8 + k++] = bit;
  }
  return table;
}

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
  /** chunkRows × Cp logits; `backward` reads δ from here. */
  readonly logits: Float32Array;
  /** Cp: Σ_b δ_b of the rows last passed to `backward`, filled by the caller. */
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
    | 'pos'
    | 'idx'
    | 'val'
    | 'offs'
    | 'logits',
    number
  >;
  private readonly xBytes: Uint8Array;
  private readonly xFloats: Float32Array;
  private readonly scale: Float32Array;
  private readonly coef: Float32Array;
  /** Weight rows with a dense feature (shift or bias): [denseFrom, denseTo). */
  private denseFrom = 0;
  private denseTo = 0;
  private transform: FeatureTransform | undefined;

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
      pos: take(n * width * 2 + 32), // the sparsifier writes up to 8 entries past the last one
      idx: take(n * width * 4),
      val: take(n * width * 4),
      offs: take((n + 1) * 4),
      logits: take(n * this.Cp * 4),
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
    this.xBytes = new Uint8Array(buffer, this.p.x, n * width);
    this.xFloats = floats ? f32(this.p.x, n * width) : new Float32Array(0);
    new Uint16Array(buffer, this.p.lut, 256 * 8).set(bitPositionTable());
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

  /** Copy rows row0 … row0+n−1 of x (width values each) to kernel rows at … at+n−1. */
  load(x: Values, row0: number, n: number, at = 0): void {
    const w = this.width;
    if (at + n > this.chunkRows) throw new RangeError(`load: rows ${at}+${n} exceed ${this.chunkRows}`);
    const rows = x.subarray(row0 * w, (row0 + n) * w);
    if (this.floats) this.xFloats.set(rows as Float32Array, at * w);
    else this.xBytes.set(rows as Uint8Array, at * w);
  }

  /** logits[b] = φ(x_b)·W for the first n loaded rows, with the current weights. */
  forward(n: number): void {
    const { ex, p } = this;
    const rowBytes = this.Cp * 4;
    if (this.floats) ex.sparsifyF32(p.x, n, this.width, p.scale, rowBytes, p.idx, p.val, p.offs);
    else ex.sparsifyU8(p.x, n, this.width, p.scale, rowBytes, p.lut, p.pos, p.idx, p.val, p.offs);
    ex.rowsDot(p.W, this.Cp, p.coef, this.denseFrom, this.denseTo, p.base);
    ex.logits(n, p.W, this.Cp, p.base, p.idx, p.val, p.offs, p.logits);
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
  for (let r = 0; r < rows; r++) {
    const f = r * a;
    const t = r * b;
    for (let c = 0; c < C; c++) to[t + c] = from[f + c]!;
    for (let c = C; c < b; c++) to[t + c] = 0;
  }
}
