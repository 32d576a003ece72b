/**
 * The MLP kernel (src/kernels/mlp.ts, simd/mlp.wat) against the plain double-precision reference
 * (src/kernels/mlpReference.ts), the reference against finite differences of its own loss, and
 * the optimiser against PyTorch's rule written out here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { assembleWat, SIMD_DIR } from '../scripts/build-wasm.js';
import {
  type Architecture,
  checkArchitecture,
  describeArchitecture,
  initialMlpWeights,
  layerShapes,
  parameterCount,
} from '../src/kernels/architecture.js';
import type { FeatureTransform } from '../src/kernels/features.js';
import { MlpKernel } from '../src/kernels/mlp.js';
import { lossAndGradient } from '../src/kernels/mlpReference.js';
import { evaluateSet, ModelSgd, type OptimiserOptions } from '../src/kernels/sgdStep.js';
import { MLP_WASM } from '../src/kernels/simd/mlpWasm.js';
import { Prng } from '../src/util/random.js';
import { close, randomData, randomWeights, transformOf, type Values } from './helpers/kernels.js';

const mlp = (
  width: number,
  hidden: number[],
  activation: 'relu' | 'tanh',
  classes = 10,
  bias = true,
): Architecture => ({ type: 'mlp', inputShape: [width], bias, hidden, activation, classes });

function kernelFor(a: Architecture, t: FeatureTransform, rows: number, floats = false) {
  const k = new MlpKernel(a, floats, rows);
  k.setTransform(t);
  return k;
}

test('the committed WebAssembly module is the assembled mlp.wat', async (t) => {
  const bytes = await assembleWat('mlp.wat', readFileSync(join(SIMD_DIR, 'mlp.wat'), 'utf8'));
  t.is(MLP_WASM, Buffer.from(bytes).toString('base64'), 'run npm run build:wasm');
});

test('architecture: layer shapes, parameter count, description, checks', (t) => {
  const a = mlp(784, [128], 'relu');
  t.deepEqual(
    layerShapes(a).map((l) => [l.rows, l.cols, l.offset, l.bias, l.activation]),
    [
      [785, 128, 0, true, 'relu'],
      [129, 10, 785 * 128, true, 'softmax'],
    ],
  );
  t.is(parameterCount(a), 785 * 128 + 129 * 10);
  t.is(describeArchitecture(a), '784 → 128 relu → 10');
  t.is(parameterCount(mlp(4, [3, 2], 'tanh', 5, false)), 4 * 3 + 4 * 2 + 3 * 5);
  t.throws(() => checkArchitecture({ ...a, activation: 'gelu' }, 'm'), {
    message: /unknown activation "gelu"/,
  });
  t.throws(() => checkArchitecture({ ...a, hidden: [] }, 'm'), { message: /at least one hidden layer/ });
  t.deepEqual(checkArchitecture(JSON.parse(JSON.stringify(a)), 'm'), a);
});

test('initialisation: He and Xavier scales per layer, biases 0, drawn in order from the seed', (t) => {
  const a = mlp(784, [256], 'relu');
  const he = initialMlpWeights(a, 'he', 0, new Prng(1));
  const [first, out] = layerShapes(a);
  const std = (from: number, to: number) => {
    let s = 0;
    for (let i = from; i < to; i++) s += he[i]! ** 2;
    return Math.sqrt(s / (to - from));
  };
  close(t, std(0, 784 * 256), Math.sqrt(2 / 784), 0.01, 'he, layer 1');
  close(t, std(out!.offset, out!.offset + 256 * 10), Math.sqrt(2 / 256), 0.05, 'he, output layer');
  t.true(
    he.subarray(784 * 256, first!.rows * 256).every((v) => v === 0),
    'bias row 0',
  );
  const xavier = initialMlpWeights(a, 'xavier', 0, new Prng(1));
  close(
    t,
    xavier[0]! / he[0]!,
    Math.sqrt(2 / (784 + 256)) / Math.sqrt(2 / 784),
    1e-6,
    'same draws, other scale',
  );
  t.deepEqual(initialMlpWeights(a, 'he', 0, new Prng(1)), he);
});

const cases: { name: string; a: Architecture; t: FeatureTransform; floats?: boolean }[] = [
  { name: 'two ReLU layers of odd widths, bytes', a: mlp(37, [37, 13], 'relu'), t: transformOf(37) },
  {
    name: 'one tanh layer 130 wide (a 28-unit block moved back), shift, per-feature scale',
    a: mlp(37, [130], 'tanh', 3),
    t: transformOf(37, {
      scale: Array.from({ length: 37 }, (_, j) => (1 + (j % 4)) / 255),
      shift: Array.from({ length: 37 }, (_, j) => (j % 3 === 0 ? 0 : -0.1 * (j % 5))),
    }),
  },
  {
    name: 'ReLU 56 → 28 wide, float rows',
    a: mlp(21, [56, 28], 'relu', 12),
    t: transformOf(21),
    floats: true,
  },
  {
    name: 'no bias input',
    a: mlp(19, [8], 'tanh', 4, false),
    t: transformOf(19, { bias: false }),
  },
];

for (const c of cases) {
  test(`forward, loss and every gradient match the reference: ${c.name}`, (t) => {
    const rng = new Prng(c.a.hidden[0]!);
    const n = 23;
    const width = c.t.width;
    const { x, labels } = randomData(rng, n, width, c.a.classes, c.floats);
    const W = randomWeights(rng, parameterCount(c.a), 0.3);
    const ref = lossAndGradient(c.a, W, x, labels, n, c.t);
    const k = kernelFor(c.a, c.t, 32, c.floats);
    k.writeWeights(W);
    t.deepEqual(k.readWeights(), W, 'the weights come back as they went in');
    k.load(x, labels, 0, n);
    k.forward(n);
    const z = new Float64Array(c.a.classes);
    for (let b = 0; b < n; b++) {
      k.logitsOf(b, z);
      for (let j = 0; j < c.a.classes; j++) close(t, z[j]!, ref.logits[b]![j]!, 1e-5, `z[${b},${j}]`);
    }
    const stats = { loss: 0, correct: 0 };
    k.softmax(n, true, stats);
    close(t, stats.loss, ref.loss, 1e-5, 'loss');
    t.is(stats.correct, ref.correct);
    k.zeroGradient();
    k.backward(n, 'G', 1);
    const G = k.readGradient();
    for (let i = 0; i < G.length; i++) close(t, G[i]!, ref.grad[i]!, 1e-4, `grad[${i}]`);
  });
}

test('the reference gradient and the kernel’s agree with finite differences of the loss', (t) => {
  for (const activation of ['relu', 'tanh'] as const) {
    const a = mlp(19, [9, 6], activation, 4);
    const tr = transformOf(19, { shift: Array.from({ length: 19 }, (_, j) => (j % 2 ? -0.3 : 0)) });
    const rng = new Prng(11);
    const n = 9;
    const { x, labels } = randomData(rng, n, 19, 4);
    const W = randomWeights(rng, parameterCount(a), 0.4);
    const k = kernelFor(a, tr, 16);
    k.writeWeights(W);
    k.load(x, labels, 0, n);
    k.forward(n);
    k.softmax(n, true, { loss: 0, correct: 0 });
    k.zeroGradient();
    k.backward(n, 'G', 1);
    const G = k.readGradient();
    const ref = lossAndGradient(a, W, x, labels, n, tr).grad;
    const [l1, l2, l3] = layerShapes(a);
    const h = 1e-5;
    const Wd = Float64Array.from(W);
    // first-layer weights and its bias, a middle weight and bias, the output layer's
    const picks = [
      0,
      3 * 9 + 4,
      19 * 9 + 2,
      l2!.offset + 5,
      l2!.offset + 9 * 6 + 1,
      l3!.offset,
      l3!.offset + 6 * 4 + 3,
    ];
    t.is(l1!.rows, 20);
    for (const i of picks) {
      const saved = Wd[i]!;
      Wd[i] = saved + h;
      const up = lossAndGradient(a, Wd, x, labels, n, tr).loss;
      Wd[i] = saved - h;
      const down = lossAndGradient(a, Wd, x, labels, n, tr).loss;
      Wd[i] = saved;
      const numeric = (up - down) / (2 * h);
      close(t, ref[i]!, numeric, 1e-5, `${activation}: reference ∂loss/∂W[${i}]`);
      close(t, G[i]!, numeric, 1e-3, `${activation}: kernel ∂loss/∂W[${i}]`);
    }
  }
});

test('tanh in the kernel is within 2 units in the last place of Math.tanh', (t) => {
  const a = mlp(1, [4], 'tanh', 2, false);
  const tr = transformOf(1, { scale: [1], bias: false });
  const k = kernelFor(a, tr, 256, true);
  // W1 row 0 = [1, 0, 0, 0]: hidden unit 0 is tanh(x)
  const W = new Float32Array(parameterCount(a));
  W[0] = 1;
  k.writeWeights(W);
  const xs = Float32Array.from({ length: 256 }, (_, i) => ((i - 128) / 128) ** 3 * 12);
  k.load(xs, new Int32Array(256), 0, 256);
  k.forward(256);
  const hidden = (k as unknown as { layers: { out: number; stride: number }[]; mem: ArrayBuffer }).layers[0]!;
  const h = new Float32Array((k as unknown as { mem: ArrayBuffer }).mem, hidden.out, 256 * hidden.stride);
  let worst = 0;
  for (let i = 0; i < 256; i++) {
    const want = Math.tanh(xs[i]!);
    worst = Math.max(
      worst,
      Math.abs(h[i * hidden.stride]! - want) / Math.max(2 ** -126, Math.abs(want) * 2 ** -23),
    );
  }
  t.true(worst <= 2, `worst error ${worst.toFixed(2)} ulp`);
});

/** PyTorch's SGD rule on the reference gradient; weight decay spares each layer's bias row. */
function referenceStep(
  a: Architecture,
  W: Float64Array,
  V: Float64Array,
  grad: Float64Array,
  n: number,
  lr: number,
  o: OptimiserOptions,
) {
  const per = o.reduction === 'mean' ? 1 / n : 1;
  const norm = Math.sqrt(grad.reduce((s, g) => s + (g * per) ** 2, 0));
  const clip = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
  const isBias = new Uint8Array(W.length);
  for (const l of layerShapes(a))
    if (l.bias) isBias.fill(1, l.offset + (l.rows - 1) * l.cols, l.offset + l.rows * l.cols);
  for (let i = 0; i < W.length; i++) {
    let g = grad[i]! * per * clip;
    if (!isBias[i]) g += o.weightDecay * W[i]!;
    let step = g;
    if (o.momentum > 0) {
      V[i] = o.momentum * V[i]! + g;
      step = o.nesterov ? g + o.momentum * V[i]! : V[i]!;
    }
    W[i] = W[i]! - lr * step;
  }
}

const optimisers: [string, OptimiserOptions][] = [
  [
    'plain SGD (straight into W)',
    { reduction: 'mean', momentum: 0, nesterov: false, weightDecay: 0, clipNorm: 0 },
  ],
  ['sum', { reduction: 'sum', momentum: 0, nesterov: false, weightDecay: 0, clipNorm: 0 }],
  [
    'Nesterov and weight decay',
    { reduction: 'mean', momentum: 0.8, nesterov: true, weightDecay: 0.05, clipNorm: 0 },
  ],
  [
    'momentum and clipping',
    { reduction: 'mean', momentum: 0.5, nesterov: false, weightDecay: 0, clipNorm: 0.1 },
  ],
];

for (const [name, options] of optimisers) {
  test(`MLP steps follow PyTorch's rule: ${name}`, (t) => {
    const a = mlp(23, [30], 'relu', 10);
    const tr = transformOf(23, { shift: Array.from({ length: 23 }, () => -0.2) });
    const rng = new Prng(3);
    const W0 = initialMlpWeights(a, 'he', 0, rng);
    const sgd = new ModelSgd(kernelFor(a, tr, 8), options); // a batch of 20: three chunks
    sgd.kernel.writeWeights(W0);
    const W = Float64Array.from(W0);
    const V = new Float64Array(W.length);
    for (let s = 0; s < 3; s++) {
      const n = s === 2 ? 20 : 6;
      const { x, labels } = randomData(rng, n, 23, 10);
      const ref = lossAndGradient(a, W, x, labels, n, tr);
      close(t, sgd.step(x, labels, 0, n, tr, 0.3).loss, ref.loss, 1e-5, `loss at step ${s}`);
      referenceStep(a, W, V, ref.grad, n, 0.3, options);
    }
    const got = sgd.kernel.readWeights();
    for (let i = 0; i < W.length; i++) close(t, got[i]!, W[i]!, 1e-4, `W[${i}]`);
    if (options.momentum > 0) {
      const v = sgd.kernel.readVelocity();
      for (let i = 0; i < V.length; i++) close(t, v[i]!, V[i]!, 1e-4, `v[${i}]`);
    }
  });
}

test('evaluateSet scores an MLP: accuracy, loss, confusion, predictions', (t) => {
  const a = mlp(30, [17], 'tanh', 5);
  const tr = transformOf(30);
  const rng = new Prng(9);
  const { x, labels } = randomData(rng, 77, 30, 5);
  const W = randomWeights(rng, parameterCount(a), 0.5);
  const ref = lossAndGradient(a, W, x, labels, 77, tr);
  const predictions: number[] = [];
  const scores = evaluateSet(kernelFor(a, tr, 16), W, x as Values, labels, 77, tr, (row, p) => {
    predictions[row] = p;
  });
  close(t, scores.accuracy, ref.correct / 77, 1e-12, 'accuracy');
  close(t, scores.loss, ref.loss / 77, 1e-5, 'loss');
  t.is(
    scores.confusion.reduce((s, v) => s + v, 0),
    77,
  );
  for (let r = 0; r < 77; r++) t.is(predictions[r], ref.logits[r]!.indexOf(Math.max(...ref.logits[r]!)));
});
