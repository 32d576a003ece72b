/**
 * The sgd stage's model: its architecture from the settings and the first block of samples, the
 * kernel and the optimiser over it, and the weights it starts from — initial, or a checkpoint's.
 */
import { type Architecture, initialMlpWeights, parameterCount } from '../../kernels/architecture.js';
import { createModelKernel } from '../../kernels/modelKernel.js';
import { initialWeights, ModelSgd } from '../../kernels/sgdStep.js';
import type { SampleBlock } from '../../pipeline/messages.js';
import { RxtrainError } from '../../util/errors.js';
import type { Prng } from '../../util/random.js';
import type { ModelSettings, SgdSettings, SgdState } from './settings.js';

/** Most rows one forward pass of the kernel takes; larger batches go through in chunks. */
const CHUNK_ROWS = 512;

/** The model `settings` describe, on the data of `block`. */
export function architectureOf(model: ModelSettings, block: SampleBlock): Architecture {
  const common = { inputShape: [...block.shape], bias: block.transform.bias, classes: block.classes };
  if (model.type === 'softmax') return { type: 'softmax', hidden: [], ...common };
  return { type: 'mlp', hidden: [...model.hidden], activation: model.activation, ...common };
}

/** The shape part of the stage's state: checked against a checkpoint's on resume. */
export function stateShape(a: Architecture): Pick<SgdState, 'rows' | 'classes' | 'hidden'> {
  const rows = a.inputShape.reduce((x, y) => x * y, 1) + (a.bias ? 1 : 0);
  return { rows, classes: a.classes, ...(a.hidden.length ? { hidden: [...a.hidden] } : {}) };
}

/**
 * The optimiser over a fresh kernel for the model, its weights set: the checkpoint's when
 * `restored`, else drawn from `rng` (softmax: `settings.init`, every weight in order, as before
 * there were other models; MLP: `model.init` per layer, biases 0).
 */
export function startModel(
  settings: SgdSettings,
  a: Architecture,
  block: SampleBlock,
  rng: () => Prng,
  restored: SgdState | undefined,
): ModelSgd {
  const floats = block.data instanceof Float32Array;
  const kernel = createModelKernel(a, floats, Math.min(settings.batchSize, CHUNK_ROWS));
  const sgd = new ModelSgd(kernel, settings);
  if (restored) {
    const want = stateShape(a);
    const got = `${restored.rows}×${restored.classes}${restored.hidden ? ` with hidden layers [${restored.hidden}]` : ''}`;
    const have = `${want.rows}×${want.classes}${want.hidden ? ` with hidden layers [${want.hidden}]` : ''}`;
    if (got !== have || restored.weights.length !== parameterCount(a)) {
      throw new RxtrainError(
        'E_RESUME',
        `sgd: the checkpoint's model is ${got}, the data and settings give ${have}`,
      );
    }
    kernel.writeWeights(restored.weights);
    if (settings.momentum > 0 && restored.velocity) kernel.writeVelocity(restored.velocity);
    return sgd;
  }
  const model = settings.model;
  kernel.writeWeights(
    model.type === 'mlp'
      ? initialMlpWeights(a, model.init, model.std, rng())
      : initialWeights(parameterCount(a), settings.init, rng()),
  );
  return sgd;
}
