/**
 * The SIMD kernels against hand-computed values, a plain double-precision reference written here
 * (dense, no tricks), and finite differences of the loss.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { assembleWat, SIMD_DIR, targetOf } from '../scripts/build-wasm.js';
import type { FeatureTransform } from '../src/kernels/features.js';
import { gatherRows, gatherSink } from '../src/kernels/gatherRows.js';
import { learningRate } from '../src/kernels/schedule.js';
import { evaluateSet, ModelSgd, type OptimiserOptions } from '../src/kernels/sgdStep.js';
import { SOFTMAX_REGRESSION_WASM } from '../src/kernels/simd/softmaxRegressionWasm.js';
import { type LossStats, SoftmaxRegressionKernel } from '../src/kernels/softmaxRegression.js';
import { Prng } from '../src/util/random.js';
import { close, randomData, randomWeights as randomW, transformOf, type Values } from './helpers/kernels.js';

/** φ(x_b) in double precision, dense. */
function features(x: Values, b: number, t: FeatureTransform): number[] {
  const f: number[] = [];
  for (let j = 0; j < t.width; j++) f.push(x[b * t.width + j]! * t.scale[j]! + (t.shift ? t.shift[j]! : 0));
  if (t.bias) f.push(1);
  return f;
}

/** Reference: summed cross-entropy over rows and its gradient wrt W (rows × C), in doubles. */
function reference(
  W: ArrayLike<number>,
  C: number,
  x: Values,
  labels: Int32Array,
  n: number,
  t: FeatureTransform,
) {
  const rows = t.width + (t.bias ? 1 : 0);
  const grad = new Float64Array(rows * C);
  const logits: number[][] = [];
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < n; b++) {
    const f = features(x, b, t);
    const z = new Array(C).fill(0);
    for (let j = 0; j < rows; j++) for (let c = 0; c < C; c++) z[c] += f[j]! * W[j * C + c]!;
    logits.push(z);
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, v) => a + v, 0);
    loss += Math.log(sum) - (z[labels[b]!] - max);
    if (z.indexOf(max) === labels[b]) correct++;
    for (let j = 0; j < rows; j++)
      for (let c = 0; c < C; c++) grad[j * C + c] += f[j]! * (e[c] / sum - (c === labels[b] ? 1 : 0));
  }
  return { loss, correct, grad, logits };
}

const randomWeights = (rng: Prng, rows: number, C: number, std = 0.5) => randomW(rng, rows * C, std);

const kernelFor = (width: number, C: number, t: FeatureTransform, rows = 64, floats = false) => {
  const k = new SoftmaxRegressionKernel({ width, classes: C, bias: t.bias, floats }, rows);
  k.setTransform(t);
  return k;
};

test('the committed WebAssembly module is the assembled softmaxRegression.wat', async (t) => {
  const name = 'softmaxRegression.wat';
  const bytes = await assembleWat(name, readFileSync(join(SIMD_DIR, name), 'utf8'));
  t.is(targetOf(name).exportName, 'SOFTMAX_REGRESSION_WASM');
  t.is(SOFTMAX_REGRESSION_WASM, Buffer.from(bytes).toString('base64'), 'run npm run build:wasm');
});

test('forward and softmax match hand-computed values', (t) => {
  // width 3, 2 classes, bias; x = [255, 0, 51] → φ = [1, 0, 0.2, 1]
  const tr = transformOf(3);
  const k = kernelFor(3, 2, tr, 4);
  const W = Float32Array.from([1, -1, 5, 5, 2, 0, 0.5, 0.25]); // rows × classes
  k.writeWeights(W);
  k.load(Uint8Array.from([255, 0, 51]), Int32Array.from([1]), 0, 1);
  k.forward(1);
  // z0 = 1·1 + 0.2·2 + 0.5 = 1.9;  z1 = −1 + 0 + 0.25 = −0.75
  close(t, k.logits[0]!, 1.9, 1e-6, 'z0');
  close(t, k.logits[1]!, -0.75, 1e-6, 'z1');
  const stats: LossStats = { loss: 0, correct: 0 };
  k.softmax(1, true, stats);
  const p1 = 1 / (1 + Math.exp(2.65)); // softmax(z)[1]
  close(t, stats.loss, -Math.log(p1), 1e-6, 'loss');
  t.is(stats.correct, 0, 'argmax is class 0, the label is 1');
  close(t, k.logits[0]!, 1 - p1, 1e-6, 'δ0');
  close(t, k.logits[1]!, p1 - 1, 1e-6, 'δ1');
  close(t, k.deltaSum[0]! + k.deltaSum[1]!, 0, 1e-6, 'δ sums to 0');
});

test('zero weights give log C loss and δ = 1/C − onehot', (t) => {
  const tr = transformOf(5);
  const k = kernelFor(5, 10, tr, 8);
  k.writeWeights(new Float32Array(6 * 10));
  k.load(Uint8Array.from([1, 2, 3, 4, 5, 0, 0, 0, 0, 9]), Int32Array.from([3, 7]), 0, 2);
  k.forward(2);
  const stats: LossStats = { loss: 0, correct: 0 };
  k.softmax(2, true, stats);
  close(t, stats.loss, 2 * Math.log(10), 1e-6, 'loss');
  t.is(stats.correct, 0, 'ties go to the first class, 0');
  for (let c = 0; c < 10; c++) close(t, k.logits[12 + c]!, c === 7 ? -0.9 : 0.1, 1e-6, `δ[1,${c}]`);
  t.is(k.logits[10], 0, 'pad lanes stay 0');
});

test('the softmax is stable for huge logits', (t) => {
  const tr = transformOf(2, { scale: [1, 1], bias: false });
  const k = kernelFor(2, 3, tr, 2);
  k.writeWeights(Float32Array.from([400, 0, -400, 0, 400, 0])); // z = 255·(400, 400, −400)
  k.load(Uint8Array.from([255, 255]), Int32Array.from([2]), 0, 1);
  k.forward(1);
  const stats: LossStats = { loss: 0, correct: 0 };
  k.softmax(1, true, stats);
  t.true(Number.isFinite(stats.loss));
  close(t, stats.loss, Math.log(2) + 255 * 800, 1e-6, 'loss = log 2 + z_max − z_label');
  close(t, k.logits[0]!, 0.5, 1e-6, 'δ0');
  close(t, k.logits[2]!, -1, 1e-6, 'δ2');
});

for (const C of [2, 3, 4, 10, 12, 17]) {
  test(`logits, loss and gradient match the reference (${C} classes, bytes, shift and bias)`, (t) => {
    const rng = new Prng(C);
    const width = 37; // two 16-byte chunks and a 5-value tail
    const shift = Array.from({ length: width }, (_, j) => (j % 3 === 0 ? 0 : -0.1 * (j % 5)));
    const scale = Array.from({ length: width }, (_, j) => (1 + (j % 4)) / 255);
    for (const tr of [
      transformOf(width),
      transformOf(width, { scale, shift }),
      transformOf(width, { bias: false }),
    ]) {
      const n = 50;
      const { x, labels } = randomData(rng, n, width, C);
      const rows = width + (tr.bias ? 1 : 0);
      const W = randomWeights(rng, rows, C);
      const ref = reference(W, C, x, labels, n, tr);
      const k = kernelFor(width, C, tr, 64);
      k.writeWeights(W);
      k.load(x, labels, 0, n);
      k.forward(n);
      for (let b = 0; b < n; b++)
        for (let c = 0; c < C; c++)
          close(t, k.logits[b * k.Cp + c]!, ref.logits[b]![c]!, 1e-5, `z[${b},${c}]`);
      const stats: LossStats = { loss: 0, correct: 0 };
      k.softmax(n, true, stats);
      close(t, stats.loss, ref.loss, 1e-5, 'loss');
      t.is(stats.correct, ref.correct);
      k.G.fill(0);
      k.backward(n, 'G', 1);
      const G = new Float32Array(rows * C);
      for (let j = 0; j < rows; j++) for (let c = 0; c < C; c++) G[j * C + c] = k.G[j * k.Cp + c]!;
      for (let i = 0; i < G.length; i++) close(t, G[i]!, ref.grad[i]!, 1e-4, `grad[${i}]`);
    }
  });
}

test('float rows and per-feature scales take the same route to the same numbers', (t) => {
  const rng = new Prng(7);
  const width = 21;
  const C = 10;
  const { x, labels } = randomData(rng, 30, width, C, true);
  const tr = transformOf(width, { scale: Array.from({ length: width }, (_, j) => 0.5 + j / 10) });
  const W = randomWeights(rng, width + 1, C);
  const ref = reference(W, C, x, labels, 30, tr);
  const k = kernelFor(width, C, tr, 32, true);
  k.writeWeights(W);
  k.load(x, labels, 0, 30);
  k.forward(30);
  for (let b = 0; b < 30; b++)
    for (let c = 0; c < C; c++) close(t, k.logits[b * k.Cp + c]!, ref.logits[b]![c]!, 1e-5, `z[${b},${c}]`);
});

test('the gradient agrees with finite differences of the loss', (t) => {
  const rng = new Prng(11);
  const width = 19;
  const C = 4;
  const tr = transformOf(width, { shift: Array.from({ length: width }, (_, j) => (j % 2 ? -0.3 : 0)) });
  const n = 12;
  const { x, labels } = randomData(rng, n, width, C);
  const rows = width + 1;
  const W = randomWeights(rng, rows, C, 0.3);
  const k = kernelFor(width, C, tr, 16);
  k.writeWeights(W);
  k.load(x, labels, 0, n);
  k.forward(n);
  k.softmax(n, true, { loss: 0, correct: 0 });
  k.G.fill(0);
  k.backward(n, 'G', 1);
  const h = 1e-4;
  const Wd = Float64Array.from(W);
  for (const i of [0, 3, 4 * 5 + 1, 4 * 10 + 2, 4 * 18 + 3, 4 * width, 4 * width + 3]) {
    const saved = Wd[i]!;
    Wd[i] = saved + h;
    const up = reference(Wd, C, x, labels, n, tr).loss;
    Wd[i] = saved - h;
    const down = reference(Wd, C, x, labels, n, tr).loss;
    Wd[i] = saved;
    const numeric = (up - down) / (2 * h);
    const analytic = k.G[Math.floor(i / C) * k.Cp + (i % C)]!;
    close(t, analytic, numeric, 1e-3, `∂loss/∂W[${i}]`);
  }
});

/** The optimiser rule written out in doubles, for comparison. */
function referenceStep(
  W: Float64Array,
  V: Float64Array,
  grad: Float64Array,
  n: number,
  rows: number,
  C: number,
  width: number,
  lr: number,
  o: OptimiserOptions,
) {
  const per = o.reduction === 'mean' ? 1 / n : 1;
  let norm = 0;
  for (const g of grad) norm += (g * per) ** 2;
  norm = Math.sqrt(norm);
  const clip = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
  for (let i = 0; i < rows * C; i++) {
    let g = grad[i]! * per * clip;
    if (Math.floor(i / C) < width) g += o.weightDecay * W[i]!;
    let step = g;
    if (o.momentum > 0) {
      V[i] = o.momentum * V[i]! + g;
      step = o.nesterov ? g + o.momentum * V[i]! : V[i]!;
    }
    W[i] = W[i]! - lr * step;
  }
}

const optimisers: [string, OptimiserOptions][] = [
  ['plain SGD, mean', { reduction: 'mean', momentum: 0, nesterov: false, weightDecay: 0, clipNorm: 0 }],
  ['plain SGD, sum', { reduction: 'sum', momentum: 0, nesterov: false, weightDecay: 0, clipNorm: 0 }],
  ['momentum', { reduction: 'mean', momentum: 0.9, nesterov: false, weightDecay: 0, clipNorm: 0 }],
  ['Nesterov', { reduction: 'mean', momentum: 0.8, nesterov: true, weightDecay: 0, clipNorm: 0 }],
  ['weight decay', { reduction: 'mean', momentum: 0, nesterov: false, weightDecay: 0.1, clipNorm: 0 }],
  ['clipping', { reduction: 'mean', momentum: 0.5, nesterov: false, weightDecay: 0.01, clipNorm: 0.05 }],
];

for (const [name, options] of optimisers) {
  test(`SGD steps follow PyTorch's rule: ${name}`, (t) => {
    const rng = new Prng(3);
    const width = 23;
    const C = 10;
    const tr = transformOf(width, { shift: Array.from({ length: width }, () => -0.2) });
    const rows = width + 1;
    const W0 = randomWeights(rng, rows, C, 0.1);
    const chunk = 8; // a batch of 20 goes through in three chunks on the gradient path
    const sgd = new ModelSgd(kernelFor(width, C, tr, chunk), options);
    sgd.kernel.writeWeights(W0);
    const W = Float64Array.from(W0);
    const V = new Float64Array(rows * C);
    for (let s = 0; s < 3; s++) {
      const n = s === 2 ? 20 : 6;
      const { x, labels } = randomData(rng, n, width, C);
      const ref = reference(W, C, x, labels, n, tr);
      const stats = sgd.step(x, labels, 0, n, tr, 0.5);
      close(t, stats.loss, ref.loss, 1e-5, `loss at step ${s}`);
      referenceStep(W, V, ref.grad, n, rows, C, width, 0.5, options);
    }
    const got = sgd.kernel.readWeights();
    for (let i = 0; i < W.length; i++) close(t, got[i]!, W[i]!, 1e-4, `W[${i}]`);
    if (options.momentum > 0) {
      const v = sgd.kernel.readVelocity();
      for (let i = 0; i < V.length; i++) close(t, v[i]!, V[i]!, 1e-4, `v[${i}]`);
    }
  });
}

test('gradient clipping reports the norm and bounds the step', (t) => {
  const rng = new Prng(5);
  const width = 16;
  const tr = transformOf(width);
  const options: OptimiserOptions = {
    reduction: 'sum',
    momentum: 0,
    nesterov: false,
    weightDecay: 0,
    clipNorm: 1e-3,
  };
  const sgd = new ModelSgd(kernelFor(width, 3, tr, 16), options);
  const W0 = randomWeights(rng, width + 1, 3);
  sgd.kernel.writeWeights(W0);
  const { x, labels } = randomData(rng, 10, width, 3);
  const ref = reference(W0, 3, x, labels, 10, tr);
  const stats = sgd.step(x, labels, 0, 10, tr, 1);
  close(t, stats.gradNorm, Math.hypot(...ref.grad), 1e-4, 'norm');
  const W1 = sgd.kernel.readWeights();
  let moved = 0;
  for (let i = 0; i < W1.length; i++) moved += (W1[i]! - W0[i]!) ** 2;
  close(t, Math.sqrt(moved), 1e-3, 1e-3, 'a step of lr · clipNorm');
});

test('evaluateSet scores a set in chunks: accuracy, loss, confusion, predictions', (t) => {
  const rng = new Prng(9);
  const width = 30;
  const C = 5;
  const tr = transformOf(width);
  const { x, labels } = randomData(rng, 77, width, C);
  const W = randomWeights(rng, width + 1, C);
  const ref = reference(W, C, x, labels, 77, tr);
  const predictions: number[] = [];
  const k = kernelFor(width, C, tr, 16);
  const scores = evaluateSet(k, W, x, labels, 77, tr, (row, p) => {
    predictions[row] = p;
  });
  close(t, scores.accuracy, ref.correct / 77, 1e-12, 'accuracy');
  close(t, scores.loss, ref.loss / 77, 1e-5, 'loss');
  t.is(
    scores.confusion.reduce((a, b) => a + b, 0),
    77,
  );
  for (let r = 0; r < 77; r++) {
    const z = ref.logits[r]!;
    t.is(predictions[r], z.indexOf(Math.max(...z)));
    t.true(scores.confusion[labels[r]! * C + predictions[r]!]! >= 1);
  }
});

test('learning-rate schedules', (t) => {
  const base = { lr: 1, warmup: 0, total: 100 };
  t.is(learningRate({ ...base, schedule: { type: 'constant' } }, 57), 1);
  const step = { ...base, schedule: { type: 'step' as const, every: 10, gamma: 0.5 } };
  t.is(learningRate(step, 9), 1);
  t.is(learningRate(step, 10), 0.5);
  t.is(learningRate(step, 25), 0.25);
  const exp = { ...base, schedule: { type: 'exponential' as const, period: 10, gamma: 0.5 } };
  close(t, learningRate(exp, 5), Math.SQRT1_2, 1e-12, 'half a period');
  close(t, learningRate(exp, 20), 0.25, 1e-12, 'two periods');
  const cos = { lr: 1, warmup: 0, total: 100, schedule: { type: 'cosine' as const, min: 0.1 } };
  t.is(learningRate(cos, 0), 1);
  close(t, learningRate(cos, 50), 0.55, 1e-12, 'half-way');
  close(t, learningRate(cos, 100), 0.1, 1e-12, 'the end');
  const warm = { lr: 1, warmup: 4, total: 104, schedule: { type: 'cosine' as const, min: 0 } };
  t.deepEqual(
    [0, 1, 2, 3].map((s) => learningRate(warm, s)),
    [0.25, 0.5, 0.75, 1],
  );
  close(t, learningRate(warm, 54), 0.5, 1e-12, 'the cosine starts after warm-up');
});

test('gatherRows copies the indexed rows and labels, reading every cache line of each row first', (t) => {
  const rng = new Prng(11);
  for (const [width, floats] of [
    [784, false],
    [33, false],
    [130, true],
    [1, false],
  ] as const) {
    const { x, labels } = randomData(rng, 50, width, 7, floats);
    const index = Int32Array.from({ length: 40 }, () => rng.int(50));
    const row0 = 5;
    const n = 30;
    const target = floats ? new Float32Array(n * width) : new Uint8Array(n * width);
    const targetLabels = new Int32Array(n);
    gatherRows(x, labels, width, index, row0, n, target, targetLabels);
    const step = 64 / x.BYTES_PER_ELEMENT;
    let touched = 0;
    for (let b = 0; b < n; b++) {
      const r = index[row0 + b]!;
      t.deepEqual(target.subarray(b * width, (b + 1) * width), x.subarray(r * width, (r + 1) * width));
      t.is(targetLabels[b], labels[r]);
      for (let i = 0; i < width - 1; i += step) touched += x[r * width + i]!;
      touched += x[r * width + width - 1]!;
    }
    t.is(gatherSink(), touched, `width ${width}`);
  }
});
