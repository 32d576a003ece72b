/**
 * The models written out plainly, in double precision: dense loops over arrays of numbers, one
 * function per layer kind, forward and backward side by side. This is the definition of what the
 * SIMD kernels (softmaxRegression.ts, mlp.ts) compute, and what the tests hold them to; nothing
 * here is fast. Weights are in the model-file layout (architecture.ts): per layer, row-major
 * [inputs (+ bias row, last), units]. Softmax regression is the network without hidden layers.
 */
import { type Activation, type Architecture, type LayerShape, layerShapes } from './architecture.js';
import type { FeatureTransform } from './features.js';

/** φ(x_b): the raw values of row b times their scale plus their shift, then 1 when `bias`. */
export function features(x: ArrayLike<number>, b: number, t: FeatureTransform): number[] {
  const f: number[] = [];
  for (let j = 0; j < t.width; j++) f.push(x[b * t.width + j]! * t.scale[j]! + (t.shift ? t.shift[j]! : 0));
  if (t.bias) f.push(1);
  return f;
}

/** A linear layer: z_c = Σ_j input_j · W[j, c], plus the bias row W[rows − 1, c] when it has one. */
export function linearForward(input: readonly number[], W: ArrayLike<number>, layer: LayerShape): number[] {
  const inputs = layer.rows - (layer.bias ? 1 : 0);
  const z: number[] = [];
  for (let c = 0; c < layer.cols; c++) {
    let sum = layer.bias ? W[layer.offset + inputs * layer.cols + c]! : 0;
    for (let j = 0; j < inputs; j++) sum += input[j]! * W[layer.offset + j * layer.cols + c]!;
    z.push(sum);
  }
  return z;
}

/**
 * Back through a linear layer: adds ∂loss/∂W = input ⊗ δ (and δ to the bias row) into `grad`, and
 * returns ∂loss/∂input = W·δ (without the bias row).
 */
export function linearBackward(
  input: readonly number[],
  delta: readonly number[],
  W: ArrayLike<number>,
  layer: LayerShape,
  grad: Float64Array,
): number[] {
  const inputs = layer.rows - (layer.bias ? 1 : 0);
  const back: number[] = [];
  for (let j = 0; j < inputs; j++) {
    let sum = 0;
    for (let c = 0; c < layer.cols; c++) {
      grad[layer.offset + j * layer.cols + c]! += input[j]! * delta[c]!;
      sum += W[layer.offset + j * layer.cols + c]! * delta[c]!;
    }
    back.push(sum);
  }
  if (layer.bias)
    for (let c = 0; c < layer.cols; c++) grad[layer.offset + inputs * layer.cols + c]! += delta[c]!;
  return back;
}

export function activate(z: readonly number[], f: Activation): number[] {
  return z.map((v) => (f === 'relu' ? Math.max(v, 0) : Math.tanh(v)));
}

/** ∂loss/∂z from ∂loss/∂h, through h = f(z), with f′ read off h: ReLU 1 where h > 0; tanh 1 − h². */
export function activationBackward(h: readonly number[], dh: readonly number[], f: Activation): number[] {
  return dh.map((d, k) => d * (f === 'relu' ? (h[k]! > 0 ? 1 : 0) : 1 - h[k]! ** 2));
}

/**
 * Cross-entropy of softmax(z) against `label`, computed stably (the maximum subtracted first), and
 * its gradient δ = softmax(z) − onehot(label).
 */
export function softmaxCrossEntropy(z: readonly number[], label: number): { loss: number; delta: number[] } {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, v) => a + v, 0);
  return {
    loss: Math.log(sum) - (z[label]! - max),
    delta: e.map((v, c) => v / sum - (c === label ? 1 : 0)),
  };
}

/** One example through the network: each layer's input, and the logits. */
export function forwardOne(
  a: Architecture,
  W: ArrayLike<number>,
  x: ArrayLike<number>,
  b: number,
  t: FeatureTransform,
): { inputs: number[][]; logits: number[] } {
  const layers = layerShapes(a);
  const inputs: number[][] = [];
  let h = features(x, b, t).slice(0, t.width); // the first layer's bias row adds the 1
  for (const [l, layer] of layers.entries()) {
    inputs.push(h);
    const z = linearForward(h, W, layer);
    if (l === layers.length - 1) return { inputs, logits: z };
    h = activate(z, a.activation!);
  }
  throw new Error('unreachable: a network has an output layer');
}

/**
 * The summed cross-entropy of rows 0 … n−1 and its gradient with respect to every weight, in the
 * model-file layout; also the logits and how many rows the first maximum gets right.
 */
export function lossAndGradient(
  a: Architecture,
  W: ArrayLike<number>,
  x: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  t: FeatureTransform,
): { loss: number; correct: number; grad: Float64Array; logits: number[][] } {
  const layers = layerShapes(a);
  const last = layers.at(-1)!;
  const grad = new Float64Array(last.offset + last.rows * last.cols);
  const logits: number[][] = [];
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < n; b++) {
    const pass = forwardOne(a, W, x, b, t);
    logits.push(pass.logits);
    const out = softmaxCrossEntropy(pass.logits, labels[b]!);
    loss += out.loss;
    if (pass.logits.indexOf(Math.max(...pass.logits)) === labels[b]) correct++;
    let delta = out.delta;
    for (let l = layers.length - 1; l >= 0; l--) {
      const back = linearBackward(pass.inputs[l]!, delta, W, layers[l]!, grad);
      // the input of layer l > 0 is the activation of layer l − 1
      if (l > 0) delta = activationBackward(pass.inputs[l]!, back, a.activation!);
    }
  }
  return { loss, correct, grad, logits };
}
