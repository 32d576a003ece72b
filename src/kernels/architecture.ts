/**
 * The shape of a model, as plain data: softmax regression (one linear layer from the features to
 * the classes) or a multi-layer perceptron (hidden layers with an activation, then that linear
 * layer to the classes). Softmax regression is the perceptron without hidden layers.
 *
 * One Float32Array holds every parameter of a model, layer after layer, each layer row-major
 * [inputs (+1 bias row, last), units]. That is the layout of weights.f32, of model snapshots and
 * of checkpoints; the kernels keep their own padded copy inside.
 */
import { RxtrainError } from '../util/errors.js';

export type Activation = 'relu' | 'tanh';

export interface Architecture {
  type: 'softmax' | 'mlp';
  /** The shape of one example, e.g. [28, 28]; its product is the number of raw inputs. */
  inputShape: readonly number[];
  /** The first layer has a bias row: the feature transform's constant-1 input (normalise.bias). */
  bias: boolean;
  /** Units of each hidden layer, input side first; empty for softmax regression. */
  hidden: readonly number[];
  /** The hidden layers' activation; absent without hidden layers. */
  activation?: Activation;
  classes: number;
}

/** One layer of the parameter vector. */
export interface LayerShape {
  /** Rows: the layer's inputs, plus its bias row (last) when it has one. */
  rows: number;
  /** Columns: its units (the classes, for the last layer). */
  cols: number;
  /** Index of its first parameter in the whole vector. */
  offset: number;
  /** Whether its last row is a bias. Hidden and output layers of an MLP always have one. */
  bias: boolean;
  /** What follows the layer: the hidden activation, or the softmax of the output layer. */
  activation: Activation | 'softmax';
}

export function inputWidth(a: Architecture): number {
  return a.inputShape.reduce((x, y) => x * y, 1);
}

/** The layers in order, input side first. */
export function layerShapes(a: Architecture): LayerShape[] {
  const layers: LayerShape[] = [];
  let inputs = inputWidth(a);
  let bias = a.bias;
  let offset = 0;
  for (const [i, units] of [...a.hidden, a.classes].entries()) {
    const rows = inputs + (bias ? 1 : 0);
    const last = i === a.hidden.length;
    layers.push({ rows, cols: units, offset, bias, activation: last ? 'softmax' : a.activation! });
    offset += rows * units;
    inputs = units;
    bias = true;
  }
  return layers;
}

/** Parameters in all: the length of the weight vector. */
export function parameterCount(a: Architecture): number {
  const last = layerShapes(a).at(-1)!;
  return last.offset + last.rows * last.cols;
}

/** `784 → 128 relu → 10`, for messages and the report. */
export function describeArchitecture(a: Architecture): string {
  const hidden = a.hidden.map((h) => `${h} ${a.activation}`);
  return [inputWidth(a), ...hidden, `${a.classes}`].join(' → ');
}

/** Whether two architectures have the same parameters and compute the same function. */
export function sameArchitecture(a: Architecture, b: Architecture): boolean {
  return (
    a.type === b.type &&
    inputWidth(a) === inputWidth(b) &&
    a.bias === b.bias &&
    a.classes === b.classes &&
    a.hidden.length === b.hidden.length &&
    a.hidden.every((h, i) => h === b.hidden[i]) &&
    (a.hidden.length === 0 || a.activation === b.activation)
  );
}

/** Checked plain data → an Architecture; throws E_DATA naming `where` on anything else. */
export function checkArchitecture(value: unknown, where: string): Architecture {
  const bad = (what: string) => new RxtrainError('E_DATA', `${where}: ${what}`);
  const v = value as Partial<Architecture> | null;
  if (typeof v !== 'object' || v === null) throw bad('no model architecture');
  if (v.type !== 'softmax' && v.type !== 'mlp') throw bad(`unknown model type ${JSON.stringify(v.type)}`);
  const positive = (x: unknown) => Number.isInteger(x) && (x as number) > 0;
  if (!Array.isArray(v.inputShape) || v.inputShape.length === 0 || !v.inputShape.every(positive))
    throw bad('inputShape must be a list of positive integers');
  if (!positive(v.classes)) throw bad('classes must be a positive integer');
  const hidden = v.hidden ?? [];
  if (!Array.isArray(hidden) || !hidden.every(positive))
    throw bad('hidden must be a list of positive integers');
  if (v.type === 'softmax' && hidden.length > 0) throw bad('softmax regression has no hidden layers');
  if (v.type === 'mlp' && hidden.length === 0) throw bad('an MLP has at least one hidden layer');
  if (hidden.length > 0 && v.activation !== 'relu' && v.activation !== 'tanh')
    throw bad(`unknown activation ${JSON.stringify(v.activation)} (relu or tanh)`);
  return {
    type: v.type,
    inputShape: [...v.inputShape],
    bias: v.bias === true,
    hidden: [...hidden],
    ...(hidden.length > 0 ? { activation: v.activation } : {}),
    classes: v.classes!,
  };
}

/** How an MLP's weights start (biases start at 0). */
export type MlpInit = 'he' | 'xavier' | 'normal';

/**
 * An MLP's initial parameters: each layer's weight rows drawn in order from N(0, σ²) — he:
 * σ² = 2/fan_in (Kaiming, for ReLU), xavier: σ² = 2/(fan_in + fan_out) (Glorot, for tanh),
 * normal: σ = std — and its bias row 0. fan_in counts the layer's inputs, not its bias.
 */
export function initialMlpWeights(
  a: Architecture,
  init: MlpInit,
  std: number,
  rng: { normal(): number },
): Float32Array {
  const W = new Float32Array(parameterCount(a));
  for (const layer of layerShapes(a)) {
    const fanIn = layer.rows - (layer.bias ? 1 : 0);
    const sigma =
      init === 'he' ? Math.sqrt(2 / fanIn) : init === 'xavier' ? Math.sqrt(2 / (fanIn + layer.cols)) : std;
    const end = layer.offset + fanIn * layer.cols;
    for (let i = layer.offset; i < end; i++) W[i] = sigma * rng.normal();
  }
  return W;
}
