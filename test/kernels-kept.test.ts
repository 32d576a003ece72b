/**
 * Sets the softmax-regression kernel keeps packed (kernels/packedRows.ts) score exactly as their
 * rows do: the same logits to the bit, so the same accuracy, loss, confusion and predictions.
 */
import test from 'ava';
import { PackedRows } from '../src/kernels/packedRows.js';
import { evaluateSet } from '../src/kernels/sgdStep.js';
import { SoftmaxRegressionKernel } from '../src/kernels/softmaxRegression.js';
import { Prng } from '../src/util/random.js';
import { randomWeights, transformKind, transformOf } from './helpers/kernels.js';

/** n byte rows, each value non-zero with probability `density`. */
function rows(rng: Prng, n: number, width: number, C: number, density: number) {
  const x = new Uint8Array(n * width);
  for (let i = 0; i < x.length; i++) if (rng.nextFloat() < density) x[i] = 1 + rng.int(255);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(C);
  return { x, labels };
}

const cases = [
  { what: '10 classes (the unrolled loop), 784 wide, one scale', width: 784, C: 10, scales: 'uniform' },
  {
    what: '5 classes, 30 wide (a tail past the 16-byte chunks), one scale',
    width: 30,
    C: 5,
    scales: 'uniform',
  },
  { what: '10 classes, per-feature scales and shifts', width: 100, C: 10, scales: 'per-feature' },
  { what: '3 classes, 17 wide, per-feature scales, no bias', width: 17, C: 3, scales: 'no-bias' },
] as const;

for (const c of cases) {
  test(`a kept set scores as its rows do: ${c.what}`, (t) => {
    const rng = new Prng(c.width * 31 + c.C);
    const n = 1000;
    const { x, labels } = rows(rng, n, c.width, c.C, 0.2);
    const tr = transformKind(rng, c.width, c.scales);
    const W = randomWeights(rng, (c.width + (tr.bias ? 1 : 0)) * c.C);
    const score = (again: boolean) => {
      const k = new SoftmaxRegressionKernel(
        { width: c.width, classes: c.C, bias: tr.bias, floats: false },
        64,
      );
      const predicted: number[] = [];
      const first = evaluateSet(k, W, x, labels, n, tr, (r, p) => predicted.push(r, p), again);
      const second = evaluateSet(k, W, x, labels, n, tr, undefined, again);
      return { first, second, predicted, kept: k.keep(x, n) };
    };
    const plain = score(false);
    const kept = score(true);
    t.truthy(kept.kept, 'a set 20% non-zero is kept');
    t.is(kept.first.loss, plain.first.loss);
    t.is(kept.first.accuracy, plain.first.accuracy);
    t.deepEqual(Array.from(kept.first.confusion), Array.from(plain.first.confusion));
    t.deepEqual(kept.predicted, plain.predicted);
    t.deepEqual(kept.second, plain.first, 'the second evaluation reads the kept set');
  });
}

test('the first evaluation keeps the non-zeros of a set; a set it would not shrink is declined', (t) => {
  const rng = new Prng(5);
  const width = 50;
  const k = new SoftmaxRegressionKernel({ width, classes: 4, bias: true, floats: false }, 32);
  const tr = transformOf(width);
  const W = randomWeights(rng, (width + 1) * 4);
  const { x: sparse, labels } = rows(rng, 100, width, 4, 0.1);
  t.false(k.keep(sparse, 100)!.complete, 'nothing kept before an evaluation');
  evaluateSet(k, W, sparse, labels, 100, tr, undefined, true);
  const packed = k.keep(sparse, 100)!;
  t.true(packed.complete);
  t.is(k.keep(sparse, 100), packed, 'the same object for the same rows');
  for (let r = 0; r < 100; r++) {
    const row = sparse.subarray(r * width, (r + 1) * width);
    const at: number[] = [];
    for (let j = 0; j < width; j++) if (row[j]) at.push(j);
    const from = packed.offs[r]!;
    const to = packed.offs[r + 1]!;
    t.deepEqual(Array.from(packed.pos.subarray(from, to)), at, `row ${r}'s positions`);
    t.deepEqual(
      Array.from(packed.bytes.subarray(from, to)),
      at.map((j) => row[j]!),
      `row ${r}'s bytes`,
    );
  }
  // 40% non-zero: 3 bytes per entry would be more than the rows' own bytes.
  const dense = rows(rng, 100, width, 4, 0.4);
  const plain = evaluateSet(k, W, dense.x, dense.labels, 100, tr);
  t.deepEqual(evaluateSet(k, W, dense.x, dense.labels, 100, tr, undefined, true), plain);
  t.is(k.keep(dense.x, 100), undefined, 'declined after the first pass');
  t.deepEqual(evaluateSet(k, W, dense.x, dense.labels, 100, tr, undefined, true), plain);
  t.is(k.keep(new Float32Array(100 * width), 100), undefined, 'float rows are not packed');
});

test('a packed set gives up, and lets its memory go, as soon as the entries outgrow the rows', (t) => {
  const set = new PackedRows(100, 3);
  const chunk = () => set.append(10, 30, new Uint16Array(30), new Uint8Array(30), new Int32Array(11));
  for (let i = 0; i < 3; i++) chunk();
  t.false(set.declined, '90 entries fit 300 bytes');
  t.is(set.filled, 30);
  chunk();
  t.true(set.declined, 'the fourth chunk of 30 would not');
  t.is(set.pos.length + set.bytes.length, 0);
});

test('a set denser after its first chunk grows its store and still scores as its rows do', (t) => {
  const rng = new Prng(21);
  const width = 40;
  const sparse = rows(rng, 64, width, 3, 0.02);
  const dense = rows(rng, 500, width, 3, 0.3);
  const x = new Uint8Array([...sparse.x, ...dense.x]);
  const labels = Int32Array.from([...sparse.labels, ...dense.labels]);
  const tr = transformOf(width);
  const W = randomWeights(rng, (width + 1) * 3);
  const k = new SoftmaxRegressionKernel({ width, classes: 3, bias: true, floats: false }, 64);
  const plain = evaluateSet(k, W, x, labels, 564, tr);
  evaluateSet(k, W, x, labels, 564, tr, undefined, true);
  const kept = k.keep(x, 564)!;
  t.true(kept.complete);
  t.true(kept.pos.length > 564 * width * 0.02 * 1.25, 'grew past the first chunk’s estimate');
  t.deepEqual(evaluateSet(k, W, x, labels, 564, tr, undefined, true), plain);
});
