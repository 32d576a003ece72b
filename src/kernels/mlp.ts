/**
 * The multi-layer perceptron's kernel: hidden layers with ReLU or tanh, then softmax regression
 * on the last hidden layer, over sparse rows of bytes, in WebAssembly SIMD. One instance owns one
 * memory holding the weights, the optimiser's buffers and the scratch for up to `chunkRows` rows;
 * nothing is allocated per batch. The plain reference it is tested against: mlpReference.ts.
 *
 * Forward, for layer l with weights W_l (inputs + bias row, units):
 *   layer 0:   a = sparse(x)·W_0 + dense·W_0      the input layer of softmaxRegression.ts: the
 *              non-zero pixels only (sparsifyU8), their shift and the bias once per batch
 *   hidden l:  h_l = act(a_l);  a_{l+1} = h_l·W_{l+1} + bias      h_l is sparsified again (a ReLU
 *              layer is about half zeros) and fed to the same sparse loops
 *   output:    logits = h_L·W_out + bias, then the softmax cross-entropy (softmaxRegression.wat)
 * Backward, every δ first from the weights before the update, then each layer's update:
 *   δ_out = softmax − onehot;  δ_l = (δ_{l+1}·W_{l+1}ᵀ) ⊙ act′(h_l)   (backHidden)
 *   ∂W_l = input_lᵀ·δ_l over the input's non-zeros (sparseScatter), ∂bias_l = Σ_b δ_l
 * so a plain SGD step writes straight into W, as the softmax kernel's does.
 *
 * Inside, each layer's units are padded to a multiple of 4 (mlpLayout.ts); outside (snapshots,
 * checkpoints, weights.f32) the layout is architecture.ts's.
 */
import { RxtrainError } from '../util/errors.js';
import { type Architecture, inputWidth, parameterCount } from './architecture.js';
import { bitPositionTable } from './bitPositions.js';
import type { FeatureTransform } from './features.js';
import { gatherRows } from './gatherRows.js';
import { type Layer, type MlpBuffers, mlpLayout } from './mlpLayout.js';
import { type MlpExports, mlpInstance } from './simd/mlpModule.js';
import { type KernelExports, kernelModule, wasm } from './simd/softmaxRegressionModule.js';
import type { Values } from './softmaxRegression.js';
import { type LossStats, tallyRows } from './tally.js';

export class MlpKernel {
  readonly classes: number;
  readonly width: number;
  readonly chunkRows: number;
  readonly floats: boolean;
  readonly parameters: number;
  /** Every layer's weights, gradient and momentum buffer, layer after layer (module memory). */
  readonly W: Float32Array;
  readonly G: Float32Array;
  readonly V: Float32Array;
  private readonly layers: Layer[];
  private readonly kind: number;
  private readonly lin: KernelExports;
  private readonly mlp: MlpExports;
  /** Where each buffer starts in module memory. */
  private readonly p: MlpBuffers;
  private readonly mem: ArrayBuffer;
  private readonly labels: Int32Array;
  /** The loaded rows, as bytes or as float32 (views of module memory, made once). */
  private readonly x: Uint8Array | Float32Array;
  /** The output layer's logits (then δ), and its Σ_b δ_b. */
  private readonly logits: Float32Array;
  private readonly outputDeltaSum: Float32Array;
  private readonly rowStats: Float32Array;
  private readonly rowArgmax: Int32Array;
  private readonly scale: Float32Array;
  private readonly coef: Float32Array;
  private uniformScale = 0;
  private denseFrom = 0;
  private denseTo = 0;
  private transform: FeatureTransform | undefined;

  constructor(
    readonly architecture: Architecture,
    floats: boolean,
    chunkRows: number,
  ) {
    const a = architecture;
    if (a.hidden.length === 0)
      throw new RangeError('MlpKernel: no hidden layers (use SoftmaxRegressionKernel)');
    if (inputWidth(a) > 0xffff) {
      // the byte sparsifier keeps pixel positions as u16
      throw new RxtrainError(
        'E_DATA',
        `sgd: rows of ${inputWidth(a)} values are too wide for the kernels (at most 65535)`,
      );
    }
    this.classes = a.classes;
    this.width = inputWidth(a);
    this.floats = floats;
    this.chunkRows = Math.max(1, chunkRows);
    this.parameters = parameterCount(a);
    this.kind = a.activation === 'tanh' ? 1 : 0;
    const n = this.chunkRows;
    const w = this.width;

    const { buffers, layers, bytes, weightFloats, maxStride } = mlpLayout(a, floats, n);
    this.p = buffers;
    this.layers = layers;

    const lin = new wasm.Instance(kernelModule(), {}).exports as unknown as KernelExports;
    const pages = Math.ceil(bytes / 65536);
    const have = lin.memory.buffer.byteLength / 65536;
    if (pages > have) lin.memory.grow(pages - have);
    this.lin = lin;
    this.mlp = mlpInstance(lin.memory);
    this.mem = lin.memory.buffer;
    const f32 = (at: number, length: number) => new Float32Array(this.mem, at, length);
    this.W = f32(this.p.W, weightFloats);
    this.G = f32(this.p.G, weightFloats);
    this.V = f32(this.p.V, weightFloats);
    this.labels = new Int32Array(this.mem, this.p.labels, n);
    this.x = floats ? f32(this.p.x, n * w) : new Uint8Array(this.mem, this.p.x, n * w);
    const out = this.layers.at(-1)!;
    this.logits = f32(out.out, n * out.stride);
    this.outputDeltaSum = f32(out.dsum, out.stride);
    this.rowStats = f32(this.p.stats, n * 4);
    this.rowArgmax = new Int32Array(this.mem, this.p.stats, n * 4);
    this.scale = f32(this.p.scale, w);
    this.coef = f32(this.p.coef, w + 1);
    f32(this.p.ones, maxStride + 1).fill(1);
    new Uint16Array(this.mem, this.p.lut, 256 * 8).set(bitPositionTable());
  }

  /** Use feature transform t (its scale, shift and bias) from now on. */
  setTransform(t: FeatureTransform): void {
    if (t === this.transform) return;
    if (t.width !== this.width || t.bias !== this.architecture.bias) {
      throw new RxtrainError(
        'E_DATA',
        `a feature transform of width ${t.width}${t.bias ? ' with a bias' : ''} reached a ${this.width}-wide model`,
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
    this.denseTo = this.width + (t.bias ? 1 : 0);
  }

  writeWeights(weights: Float32Array): void {
    this.copy(weights, this.W, true);
  }

  readWeights(out: Float32Array = new Float32Array(this.parameters)): Float32Array {
    this.copy(this.W, out, false);
    return out;
  }

  writeVelocity(v: Float32Array): void {
    this.copy(v, this.V, true);
  }

  readVelocity(out: Float32Array = new Float32Array(this.parameters)): Float32Array {
    this.copy(this.V, out, false);
    return out;
  }

  /** The gradient buffer in the model-file layout (after `backward(n, 'G', …)`). */
  readGradient(out: Float32Array = new Float32Array(this.parameters)): Float32Array {
    this.copy(this.G, out, false);
    return out;
  }

  /** Between the model-file layout and the padded one inside (`inward`: file → inside). */
  private copy(from: Float32Array, to: Float32Array, inward: boolean): void {
    if (inward) to.fill(0);
    let fileAt = 0;
    for (const layer of this.layers) {
      for (let r = 0; r < layer.fileRows; r++) {
        const inside = layer.at + layer.rowInside(r) * layer.stride;
        const file = fileAt + r * layer.units;
        if (inward) to.set(from.subarray(file, file + layer.units), inside);
        else to.set(from.subarray(inside, inside + layer.units), file);
      }
      fileAt += layer.fileRows * layer.units;
    }
  }

  /** Copy n rows of x (or rows index[row0 …]) and their labels to kernel rows 0 … n−1. */
  load(x: Values, labels: Int32Array, row0: number, n: number, index?: Int32Array): void {
    const w = this.width;
    if (n > this.chunkRows) throw new RangeError(`load: ${n} rows exceed ${this.chunkRows}`);
    const target = this.x;
    if (!index) {
      target.set(x.subarray(row0 * w, (row0 + n) * w) as never);
      this.labels.set(labels.subarray(row0, row0 + n));
      return;
    }
    gatherRows(x, labels, w, index, row0, n, target, this.labels);
  }

  /** The output layer's logits of the first n loaded rows, with the current weights. */
  forward(n: number): void {
    const { lin, mlp, p, layers } = this;
    const first = layers[0]!;
    const W = (layer: Layer) => p.W + layer.at * 4;
    const rowBytes = first.stride * 4;
    if (this.floats) lin.sparsifyF32(p.x, n, this.width, p.scale, rowBytes, p.idx, p.val, p.offs);
    else
      lin.sparsifyU8(
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
        0,
        p.offs,
      );
    lin.rowsDot(W(first), first.stride, p.coef, this.denseFrom, this.denseTo, p.base);
    mlp.sparseForward(n, W(first), first.stride, p.base, p.idx, p.val, p.offs, first.out);
    mlp.activate(first.out, n * first.stride, this.kind);
    for (let l = 1; l < layers.length; l++) {
      const input = layers[l - 1]!;
      const layer = layers[l]!;
      // the non-zero activations, as this layer's input; the bias row follows the padded units
      lin.sparsifyF32(input.out, n, input.stride, p.ones, layer.stride * 4, input.idx, input.val, input.offs);
      const bias = W(layer) + input.stride * layer.stride * 4;
      if (l < layers.length - 1) {
        mlp.sparseForward(n, W(layer), layer.stride, bias, input.idx, input.val, input.offs, layer.out);
        mlp.activate(layer.out, n * layer.stride, this.kind);
      } else lin.logits(n, W(layer), layer.stride, bias, input.idx, input.val, input.offs, layer.out);
    }
  }

  /** The softmax cross-entropy of the last forward pass (see ModelKernel.softmax). */
  softmax(
    n: number,
    grad: boolean,
    stats: LossStats,
    confusion?: Float64Array,
    predicted?: Int32Array,
  ): void {
    const out = this.layers.at(-1)!;
    if (grad) this.outputDeltaSum.fill(0);
    this.lin.softmax(
      out.out,
      n,
      out.stride,
      this.classes,
      this.p.labels,
      grad ? 1 : 0,
      out.dsum,
      this.p.stats,
    );
    tallyRows(this.rowStats, this.rowArgmax, this.labels, n, this.classes, stats, confusion, predicted);
  }

  logitsOf(b: number, out: Float64Array): void {
    const at = b * this.layers.at(-1)!.stride;
    for (let c = 0; c < this.classes; c++) out[c] = this.logits[at + c]!;
  }

  /**
   * target += alpha · ∇ of the summed loss of the first n rows of the last forward pass, whose
   * output δ `softmax(n, true, …)` left in place. Every δ is computed before any weight changes,
   * so with target 'W' and alpha = −η this is exactly a plain SGD step.
   */
  backward(n: number, target: 'W' | 'G', alpha: number): void {
    const { lin, mlp, p, layers } = this;
    const T = (layer: Layer) => (target === 'W' ? p.W : p.G) + layer.at * 4;
    for (let l = layers.length - 1; l > 0; l--) {
      const layer = layers[l]!;
      const input = layers[l - 1]!;
      mlp.backHidden(
        n,
        p.W + layer.at * 4,
        layer.stride,
        input.stride,
        layer.delta,
        input.out,
        this.kind,
        input.delta,
      );
      mlp.columnSums(n, input.delta, input.stride, input.dsum);
    }
    for (let l = layers.length - 1; l > 0; l--) {
      const layer = layers[l]!;
      const input = layers[l - 1]!;
      const { idx, val, offs } = input;
      if (l === layers.length - 1) lin.scatter(n, T(layer), layer.stride, layer.delta, idx, val, offs, alpha);
      else mlp.sparseScatter(n, T(layer), layer.stride, layer.delta, idx, val, offs, alpha);
      lin.rowsAxpy(T(layer), layer.stride, p.ones, input.stride, input.stride + 1, alpha, layer.dsum);
    }
    const first = layers[0]!;
    mlp.sparseScatter(n, T(first), first.stride, first.delta, p.idx, p.val, p.offs, alpha);
    lin.rowsAxpy(T(first), first.stride, p.coef, this.denseFrom, this.denseTo, alpha, first.dsum);
  }

  zeroGradient(): void {
    this.G.fill(0);
  }

  gradientNormSquared(): number {
    return this.lin.sumSquares(this.p.G, this.G.length);
  }

  /** W ← W − lr·step from gscale·G, layer by layer; weight decay spares each bias row. */
  applyUpdate(lr: number, gscale: number, decay: number, momentum: number, nesterov: boolean): void {
    const { lin, p } = this;
    const flag = nesterov ? 1 : 0;
    for (const layer of this.layers) {
      const o = layer.at * 4;
      const features = layer.featureRows * layer.stride;
      lin.applyUpdate(p.W + o, p.G + o, p.V + o, features, lr, gscale, decay, momentum, flag);
      const rest = (layer.rows - layer.featureRows) * layer.stride;
      const b = o + features * 4;
      if (rest > 0) lin.applyUpdate(p.W + b, p.G + b, p.V + b, rest, lr, gscale, 0, momentum, flag);
    }
  }
}
