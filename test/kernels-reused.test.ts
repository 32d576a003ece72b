/**
 * A table of training rows handed over to the softmax kernel (kernels/reusedRows.ts): the kernel
 * keeps each row's non-zeros in the row's own bytes the first time it meets it, and training on
 * the table gives the same weights, losses and counts to the bit as training on a copy it may not
 * touch — whatever the batches mix of rows met before and rows met first, rows that appear twice
 * in a batch, rows too dense to keep, empty rows, per-feature scales and batches split in chunks.
 */
import test from 'ava';
import { ModelSgd } from '../src/kernels/sgdStep.js';
import { SoftmaxRegressionKernel } from '../src/kernels/softmaxRegression.js';
import { Prng } from '../src/util/random.js';
import { randomWeights, transformKind, transformOf } from './helpers/kernels.js';

/** n byte rows about `density` non-zero, a few of them dense (kept raw) and one empty. */
function table(rng: Prng, n: number, width: number, C: number, density: number) {
  const x = new Uint8Array(n * width);
  for (let r = 0; r < n; r++) {
    const d = r % 17 === 3 ? 0.6 : r === 5 ? 0 : density;
    for (let j = 0; j < width; j++) if (rng.nextFloat() < d) x[r * width + j] = 1 + rng.int(255);
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(C);
  return { x, labels };
}

const cases = [
  { what: '784 wide, 10 classes, one scale', width: 784, C: 10, scales: 'uniform', batch: 64, chunk: 64 },
  {
    what: '30 wide (a tail past the chunks), 5 classes',
    width: 30,
    C: 5,
    scales: 'uniform',
    batch: 16,
    chunk: 16,
  },
  {
    what: '100 wide, per-feature scales and shifts, batches in chunks',
    width: 100,
    C: 10,
    scales: 'per-feature',
    batch: 40,
    chunk: 16,
  },
  { what: '17 wide, 3 classes, no bias', width: 17, C: 3, scales: 'no-bias', batch: 8, chunk: 8 },
] as const;

for (const c of cases) {
  test(`training on a table handed over gives the same weights to the bit: ${c.what}`, (t) => {
    const rng = new Prng(c.width * 7 + c.C);
    const n = 300;
    const { x, labels } = table(rng, n, c.width, c.C, 0.2);
    const tr = transformKind(rng, c.width, c.scales);
    const rows = c.width + (tr.bias ? 1 : 0);
    const W0 = randomWeights(rng, rows * c.C);
    const model = () => {
      const k = new SoftmaxRegressionKernel(
        { width: c.width, classes: c.C, bias: tr.bias, floats: false },
        c.chunk,
      );
      k.writeWeights(W0);
      return new ModelSgd(k, {
        reduction: 'mean',
        momentum: 0,
        nesterov: false,
        weightDecay: 0,
        clipNorm: 0,
      });
    };
    const plain = model();
    const reused = model();
    const kept = x.slice();
    // Half the rows, then three passes in permutation order (the first mixes rows met before
    // with rows met first), then batches drawn with replacement (rows twice in one batch).
    const draws: Int32Array[] = [Int32Array.from({ length: n / 2 }, () => rng.int(n))];
    for (let pass = 0; pass < 3; pass++) {
      const order = Int32Array.from({ length: n }, (_, i) => i);
      rng.shuffle(order);
      draws.push(order);
    }
    draws.push(Int32Array.from({ length: 4 * c.batch }, () => rng.int(n)));
    let steps = 0;
    for (const order of draws) {
      for (let row0 = 0; row0 + c.batch <= order.length; row0 += c.batch) {
        const a = plain.step(x, labels, row0, c.batch, tr, 0.5, order);
        const aStats = { ...a };
        const b = reused.step(kept, labels, row0, c.batch, tr, 0.5, order, true);
        t.deepEqual({ ...b }, aStats, `step ${steps}: loss and correct count`);
        steps++;
      }
    }
    t.deepEqual(Array.from(reused.kernel.readWeights()), Array.from(plain.kernel.readWeights()));
    // The rows were kept in place (the copy was written over), except those too dense to fit.
    const changed = (r: number) =>
      kept.subarray(r * c.width, (r + 1) * c.width).some((v, j) => v !== x[r * c.width + j]);
    t.false(changed(3), 'a row 60% non-zero stays raw');
    t.true(changed(1) || changed(2), 'sparse rows are kept in their own bytes');
  });
}

test('a table that is not handed over is never written', (t) => {
  const rng = new Prng(9);
  const { x, labels } = table(rng, 100, 50, 4, 0.2);
  const before = x.slice();
  const k = new SoftmaxRegressionKernel({ width: 50, classes: 4, bias: true, floats: false }, 32);
  k.writeWeights(randomWeights(rng, 51 * 4));
  const sgd = new ModelSgd(k, {
    reduction: 'mean',
    momentum: 0,
    nesterov: false,
    weightDecay: 0,
    clipNorm: 0,
  });
  const order = Int32Array.from({ length: 100 }, (_, i) => i);
  for (let pass = 0; pass < 2; pass++)
    for (let r = 0; r + 32 <= 100; r += 32) sgd.step(x, labels, r, 32, transformOf(50), 0.1, order);
  t.deepEqual(x, before);
});
