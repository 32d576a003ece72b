/**
 * A finished run's model, ready to ask: `loadModel(runDir).predict(pixels)`. Reads model.json and
 * weights.f32 (kernels/modelFile.ts checks them against each other) and runs the same kernel the
 * run's own evaluation ran, so a prediction's label is the one the evaluation counted.
 *
 * @example
 *   const model = loadModel('runs/mnist-mlp-20261201-101500');
 *   const { label, top } = model.predict(pixels); // 784 raw values, as the training data held them
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Architecture } from '../kernels/architecture.js';
import type { FeatureTransform } from '../kernels/features.js';
import { decodeModel, type ModelDescription, type TrainedModel } from '../kernels/modelFile.js';
import { createModelKernel, type ModelKernel } from '../kernels/modelKernel.js';
import { RxtrainError } from '../util/errors.js';
import { RUN_FILES } from './runDir.js';

export interface Prediction {
  /** The most probable class (the first, on a tie), as the evaluation counts it. */
  label: number;
  /** Its name, when the model's classes have names. */
  name?: string;
  /** softmax of the logits, one per class. */
  probabilities: number[];
  /** The three most probable classes, most probable first. */
  top: { label: number; name?: string; probability: number }[];
}

export interface LoadedModel {
  runDir: string;
  architecture: Architecture;
  /** One example's shape, e.g. [28, 28]. */
  inputShape: readonly number[];
  transform: FeatureTransform;
  classNames?: readonly string[];
  step: number;
  /** One example's raw values (as the training data held them: MNIST's are bytes 0–255). */
  predict(pixels: ArrayLike<number>): Prediction;
  /** `count` examples laid end to end in `rows`. */
  predictMany(rows: Uint8Array | Float32Array, count: number): Prediction[];
}

/** Rows per forward pass. */
const CHUNK_ROWS = 256;

export function loadModel(runDir: string): LoadedModel {
  const modelFile = join(runDir, RUN_FILES.model);
  const weightsFile = join(runDir, RUN_FILES.weights);
  const read = (file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new RxtrainError(
          'E_USAGE',
          `${runDir}: no ${file === modelFile ? RUN_FILES.model : RUN_FILES.weights}: not a finished run (see rxtrain resume)`,
        );
      throw new RxtrainError('E_IO', `${file}: cannot read (${code})`);
    }
  };
  let meta: ModelDescription;
  try {
    meta = JSON.parse(read(modelFile).toString('utf8')) as ModelDescription;
  } catch (error) {
    if (error instanceof RxtrainError) throw error;
    throw new RxtrainError('E_DATA', `${modelFile}: not valid JSON (${(error as Error).message})`);
  }
  const model = decodeModel(meta, read(weightsFile), { model: modelFile, weights: weightsFile });
  if (model.transform.scale.some(Number.isNaN))
    throw new RxtrainError('E_DATA', `${modelFile}: no feature scale recorded (written by an older rxtrain)`);
  return predictor(runDir, model);
}

function predictor(runDir: string, model: TrainedModel): LoadedModel {
  const a = model.architecture;
  const width = a.inputShape.reduce((x, y) => x * y, 1);
  const kernels = new Map<boolean, ModelKernel>();
  const kernelFor = (floats: boolean) => {
    let k = kernels.get(floats);
    if (!k) {
      k = createModelKernel(a, floats, CHUNK_ROWS);
      k.setTransform(model.transform);
      k.writeWeights(model.weights);
      kernels.set(floats, k);
    }
    return k;
  };
  const named = (label: number) => (model.classNames ? { name: model.classNames[label]! } : {});

  const predictMany = (rows: Uint8Array | Float32Array, count: number): Prediction[] => {
    if (rows.length !== count * width)
      throw new RxtrainError(
        'E_INPUT',
        `${rows.length} values for ${count} example${count === 1 ? '' : 's'}; the model takes ${width} per example ([${a.inputShape.join(', ')}])`,
      );
    const kernel = kernelFor(rows instanceof Float32Array);
    const labels = new Int32Array(count);
    const logits = new Float64Array(a.classes);
    const out: Prediction[] = [];
    for (let r = 0; r < count; r += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, count - r);
      kernel.load(rows, labels, r, n);
      kernel.forward(n);
      for (let b = 0; b < n; b++) {
        kernel.logitsOf(b, logits);
        out.push(prediction(logits, named));
      }
    }
    return out;
  };

  return {
    runDir,
    architecture: a,
    inputShape: a.inputShape,
    transform: model.transform,
    ...(model.classNames ? { classNames: model.classNames } : {}),
    step: model.step,
    predict: (pixels) => {
      const rows =
        pixels instanceof Uint8Array || pixels instanceof Float32Array ? pixels : Float32Array.from(pixels);
      return predictMany(rows, 1)[0]!;
    },
    predictMany,
  };
}

/** Label (the first maximum, as the kernel's argmax), probabilities and top 3 of one row's logits. */
function prediction(logits: Float64Array, named: (label: number) => { name?: string }): Prediction {
  let label = 0;
  for (let c = 1; c < logits.length; c++) if (logits[c]! > logits[label]!) label = c;
  const max = logits[label]!;
  const e = Array.from(logits, (z) => Math.exp(z - max));
  const sum = e.reduce((s, v) => s + v, 0);
  const probabilities = e.map((v) => v / sum);
  const top = probabilities
    .map((probability, c) => ({ label: c, ...named(c), probability }))
    .sort((x, y) => y.probability - x.probability || x.label - y.label)
    .slice(0, 3);
  return { label, ...named(label), probabilities, top };
}
