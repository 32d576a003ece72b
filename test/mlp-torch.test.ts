/**
 * rxtrain's MLP against a peer nobody here wrote: with the same initial weights and the same batch
 * of 64 MNIST digits, one SGD step in PyTorch (Debian's python3-torch, bench/peers/torch_one_step.py)
 * and in rxtrain give the same loss, the same gradient of every layer and the same weights after
 * the step, within float32 rounding. Skipped, saying so, where torch is not installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type Architecture, initialMlpWeights, layerShapes } from '../src/kernels/architecture.js';
import { MlpKernel } from '../src/kernels/mlp.js';
import { ModelSgd } from '../src/kernels/sgdStep.js';
import { littleEndianBytes } from '../src/util/packed.js';
import { Prng } from '../src/util/random.js';
import { MNIST_DIR, ROOT, tempDir } from './helpers/index.js';
import { transformOf } from './helpers/kernels.js';

const PYTHON = '/usr/bin/python3';
// Debian's OpenBLAS settings in this environment slow a current numpy; the bench unsets them too.
const env = { ...process.env, OPENBLAS_CORETYPE: undefined, OPENBLAS_L2_SIZE: undefined };
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { env }).status === 0;

const float32s = (file: string) => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const cases: [string, Architecture][] = [
  [
    '784 → 128 ReLU → 10',
    { type: 'mlp', inputShape: [28, 28], bias: true, hidden: [128], activation: 'relu', classes: 10 },
  ],
  [
    '784 → 64 tanh → 32 tanh → 10',
    { type: 'mlp', inputShape: [28, 28], bias: true, hidden: [64, 32], activation: 'tanh', classes: 10 },
  ],
];

const title =
  "one SGD step matches PyTorch's: loss, every gradient, the stepped weights (ReLU and tanh MLPs)";
if (!hasTorch)
  test.skip(`${title} — skipped: python3-torch is not installed (apt-get install python3-torch)`, () => {});
else
  test(title, (t) => {
    const n = 64;
    const lr = 0.5;
    const images = readFileSync(join(MNIST_DIR, 'train-images-idx3-ubyte')).subarray(16, 16 + n * 784);
    const labels = Int32Array.from(
      readFileSync(join(MNIST_DIR, 'train-labels-idx1-ubyte')).subarray(8, 8 + n),
    );
    const tr = transformOf(784);
    const prepared = cases.map(([name, a]) => {
      const W0 = initialMlpWeights(a, a.activation === 'relu' ? 'he' : 'xavier', 0, new Prng(7));
      // biases are 0 at initialisation; give them values so that their gradients and steps count too
      for (const l of layerShapes(a))
        for (let c = 0; c < l.cols; c++) W0[l.offset + (l.rows - 1) * l.cols + c] = 0.01 * (c % 7) - 0.03;
      const dir = tempDir();
      const spec = {
        hidden: a.hidden,
        activation: a.activation,
        classes: 10,
        width: 784,
        n,
        scale: tr.scale[0],
        lr,
      };
      writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
      writeFileSync(join(dir, 'weights.f32'), littleEndianBytes(W0));
      writeFileSync(join(dir, 'x.u8'), images);
      writeFileSync(join(dir, 'labels.i32'), littleEndianBytes(labels));
      return { name, a, W0, dir };
    });
    const script = join(ROOT, 'bench/peers/torch_one_step.py');
    const py = spawnSync(PYTHON, [script, ...prepared.map((p) => p.dir)], { env, encoding: 'utf8' });
    t.is(py.status, 0, py.stderr);

    for (const { name, a, W0, dir } of prepared) {
      const torch = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
        loss: number;
        version: string;
      };
      const torchGrad = float32s(join(dir, 'grad.f32'));
      const torchStepped = float32s(join(dir, 'stepped.f32'));

      // rxtrain: the batch's mean loss and gradient through the gradient buffer …
      const k = new MlpKernel(a, false, n);
      k.setTransform(tr);
      k.writeWeights(W0);
      k.load(images, labels, 0, n);
      k.forward(n);
      const stats = { loss: 0, correct: 0 };
      k.softmax(n, true, stats);
      k.zeroGradient();
      k.backward(n, 'G', 1 / n);
      const grad = k.readGradient();
      // … and one plain SGD step, which writes straight into the weights
      const plain = { reduction: 'mean', momentum: 0, nesterov: false, weightDecay: 0, clipNorm: 0 } as const;
      const sgd = new ModelSgd(new MlpKernel(a, false, n), plain);
      sgd.kernel.writeWeights(W0);
      sgd.step(images, labels, 0, n, tr, lr);
      const stepped = sgd.kernel.readWeights();

      const lossDiff = Math.abs(stats.loss / n - torch.loss);
      t.log(
        `${name}, PyTorch ${torch.version}: loss ${torch.loss.toFixed(7)}, rxtrain ${(stats.loss / n).toFixed(7)}: |Δ| ${lossDiff.toExponential(2)}`,
      );
      t.true(lossDiff <= 1e-5, `${name}: loss differs by ${lossDiff}`);
      for (const [l, layer] of layerShapes(a).entries()) {
        const weightsEnd = layer.offset + (layer.rows - 1) * layer.cols;
        const end = layer.offset + layer.rows * layer.cols;
        const gw = maxDiff(grad, torchGrad, layer.offset, weightsEnd);
        const gb = maxDiff(grad, torchGrad, weightsEnd, end);
        const sw = maxDiff(stepped, torchStepped, layer.offset, end);
        t.log(
          `  layer ${l + 1} [${layer.rows - 1}+1, ${layer.cols}]: max |Δ ∂W| ${gw.worst.toExponential(2)} (largest |∂W| ${gw.largest.toExponential(2)}), max |Δ ∂b| ${gb.worst.toExponential(2)} (largest ${gb.largest.toExponential(2)}), max |Δ W| after the step ${sw.worst.toExponential(2)}`,
        );
        t.true(gw.worst <= 1e-6 + 1e-4 * gw.largest, `${name}: layer ${l + 1} weight gradient`);
        t.true(gb.worst <= 1e-6 + 1e-4 * gb.largest, `${name}: layer ${l + 1} bias gradient`);
        t.true(sw.worst <= 1e-6, `${name}: layer ${l + 1} weights after the step`);
      }
    }
  });

/** The largest |x − y| over [from, to), and the largest |y| there. */
function maxDiff(x: Float32Array, y: Float32Array, from: number, to: number) {
  let worst = 0;
  let largest = 0;
  for (let i = from; i < to; i++) {
    worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    largest = Math.max(largest, Math.abs(y[i]!));
  }
  return { worst, largest };
}
