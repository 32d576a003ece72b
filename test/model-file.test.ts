/**
 * model.json + weights.f32 (src/kernels/modelFile.ts): any model written and read back bit for
 * bit, described well enough to use without rxtrain; format 1 (softmax regression's rows × classes)
 * still read; mismatches named.
 */
import test from 'ava';
import { type Architecture, initialMlpWeights, parameterCount } from '../src/kernels/architecture.js';
import { decodeModel, encodeModel, MODEL_FORMAT } from '../src/kernels/modelFile.js';
import { Prng } from '../src/util/random.js';
import { transformOf } from './helpers/kernels.js';

const files = { model: 'run/model.json', weights: 'run/weights.f32' };
const mlp: Architecture = {
  type: 'mlp',
  inputShape: [28, 28],
  bias: true,
  hidden: [64, 32],
  activation: 'tanh',
  classes: 10,
};

test('an MLP goes out and comes back: layers, input shape, transform, every weight', (t) => {
  const weights = initialMlpWeights(mlp, 'xavier', 0, new Prng(2));
  const transform = transformOf(784, { shift: Array.from({ length: 784 }, (_, j) => -(j + 1) / 1000) });
  const out = encodeModel({
    architecture: mlp,
    weights,
    step: 99,
    transform,
    classNames: ['zero', ...'123456789'],
  });
  const meta = JSON.parse(out.json);
  t.is(meta.format, MODEL_FORMAT);
  t.is(meta.architecture, '784 → 64 tanh → 32 tanh → 10');
  t.deepEqual(meta.input, { shape: [28, 28] });
  t.deepEqual(meta.layers, [
    { rows: 785, cols: 64, inputs: 784, bias: true, offset: 0, activation: 'tanh' },
    { rows: 65, cols: 32, inputs: 64, bias: true, offset: 785 * 64, activation: 'tanh' },
    { rows: 33, cols: 10, inputs: 32, bias: true, offset: 785 * 64 + 65 * 32, activation: 'softmax' },
  ]);
  t.is(meta.rows, undefined, 'format 1’s rows only for softmax regression');
  t.is(out.weights.byteLength, parameterCount(mlp) * 4);
  const back = decodeModel(meta, out.weights, files);
  t.deepEqual(back.architecture, mlp);
  t.deepEqual(back.weights, weights);
  t.deepEqual(back.transform.shift, transform.shift);
  t.is(back.step, 99);
  t.is(back.classNames![0], 'zero');
});

test('format 1 (softmax regression as rows × classes) reads as softmax regression', (t) => {
  const weights = new Float32Array(785 * 10).map((_, i) => i / 1e4);
  const bytes = encodeModel({
    architecture: { type: 'softmax', inputShape: [784], bias: true, hidden: [], classes: 10 },
    weights,
    step: 1,
    transform: transformOf(784),
  }).weights;
  const format1 = {
    format: 'rxtrain-softmax-regression/1',
    rows: 785,
    classes: 10,
    features: { width: 784, bias: true, scale: new Array(784).fill(1 / 255), shift: null },
  };
  const back = decodeModel(format1, bytes, files);
  t.deepEqual(back.architecture, { type: 'softmax', inputShape: [784], bias: true, hidden: [], classes: 10 });
  t.deepEqual(back.weights, weights);
});

test('mismatches are named: byte count, unknown format, activation, classNames', (t) => {
  const { json, weights } = encodeModel({
    architecture: mlp,
    weights: new Float32Array(parameterCount(mlp)),
    step: 0,
    transform: transformOf(784),
  });
  const meta = JSON.parse(json);
  t.throws(() => decodeModel(meta, weights.subarray(4), files), {
    message: `run/weights.f32: ${weights.byteLength - 4} bytes, but model.json describes ${parameterCount(mlp)} float32 weights (${weights.byteLength} bytes)`,
  });
  t.throws(() => decodeModel({ ...meta, format: 'rxtrain-model/9' }, weights, files), {
    message: /model format rxtrain-model\/9 is not known/,
  });
  const layers = meta.layers.map((l: object) => ({ ...l, activation: 'gelu' }));
  t.throws(() => decodeModel({ ...meta, layers }, weights, files), { message: /unknown activation "gelu"/ });
  t.throws(() => decodeModel({ ...meta, classNames: ['a'] }, weights, files), {
    message: /classNames must list 10 names/,
  });
});
