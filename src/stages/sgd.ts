/**
 * sgd — train softmax (multinomial logistic) regression by stochastic gradient descent.
 *
 * Consumes sample blocks, cuts them into mini-batches (`batchSize: 1` is the notebook's single
 * pattern per step; batches never span passes, so a pass may end with a smaller batch) and takes
 * one step per batch with PyTorch's SGD rule (src/kernels/sgdStep.ts):
 *   g = ∇ loss, where loss is the batch's mean cross-entropy (`reduction: mean`, PyTorch's
 *       default) or its summed cross-entropy (`reduction: sum`: one `outer(Φᵢ, yᵢ − tᵢ)` per sample,
 *       as in the notebook; the two agree at batch size 1, and `sum` is `mean` with lr·batchSize)
 *   g ← g·min(1, clipNorm/‖g‖);  g ← g + weightDecay·W (not the bias row);
 *   v ← momentum·v + g;  W ← W − lr_t·(nesterov ? g + momentum·v : v)
 * with lr_t from `schedule` after a linear `warmup` (durations in epochs, fractions allowed).
 * Weights start `normal` (mean, std; the notebook uses N(0, 1)) or at `zeros`.
 *
 * Stops after `steps` updates or `epochs` passes, whichever comes first, or when an evaluator's
 * early stopping asks it to. Emits a `train` event every `logEvery` steps. After every update it
 * asks the pipeline's training gate (pipeline/training.ts), which sends model snapshots to the
 * evaluators and checkpoint barriers as the pipeline's policy says; the stage itself only
 * answers `snapshot()`/`restore()` with its weights and counters. Other messages pass through.
 * Three steps per update: batching (pipeline/miniBatches.ts) → this step's learning rate
 * (kernels/schedule.ts) → one kernel step (kernels/sgdStep.ts).
 *
 * @example
 *   - type: sgd
 *     batchSize: 64
 *     lr: 0.1
 *     epochs: 5
 *     schedule: { type: cosine, min: 0 }
 *     momentum: 0.9
 */

import { z } from 'zod';
import { type Emitter, transform } from '../flow/index.js';
import { byteFeatureReach } from '../kernels/features.js';
import { type LearningRatePlan, learningRate, planInSteps } from '../kernels/schedule.js';
import { initialWeights, SoftmaxSgd } from '../kernels/sgdStep.js';
import { SoftmaxRegressionKernel } from '../kernels/softmaxRegression.js';
import type { Message, ModelSnapshot, SampleBlock, TrainingEnd } from '../pipeline/messages.js';
import { type MiniBatch, MiniBatcher } from '../pipeline/miniBatches.js';
import { defineStage } from '../pipeline/stage.js';
import type { ModelProducer, StepVerdict } from '../pipeline/training.js';
import { RxtrainError } from '../util/errors.js';
import { describeSgdProgress, type SgdCounters } from './sgd/progress.js';

export type { SgdCounters };

/** A bare string (`init: zeros`, `schedule: cosine`) means `{ type: … }`; so says `shorthand` to editors. */
const typed = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' ? { type: v } : v), schema).meta({ shorthand: 'type' });

const initSchema = typed(
  z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('normal'),
      mean: z.number().default(0),
      std: z.number().min(0).default(0.01),
    }),
    z.strictObject({ type: z.literal('zeros') }),
  ]),
);

const scheduleSchema = typed(
  z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('constant') }),
    z.strictObject({
      type: z.literal('step'),
      every: z.number().positive().default(1).describe('epochs between decays'),
      gamma: z.number().positive().default(0.1).describe('factor applied at each decay'),
    }),
    z.strictObject({
      type: z.literal('exponential'),
      gamma: z.number().positive().default(0.5).describe('factor per epoch, applied smoothly per step'),
    }),
    z.strictObject({
      type: z.literal('cosine'),
      min: z.number().min(0).default(0).describe('rate at the end of training'),
    }),
  ]),
);

export const sgdSettings = z
  .strictObject({
    batchSize: z.int().min(1).max(65536).default(64).describe('samples per update (1: the notebook)'),
    lr: z.number().positive().default(0.1).describe('learning rate (the peak, with a schedule)'),
    schedule: scheduleSchema
      .default({ type: 'constant' })
      .describe('learning-rate schedule: constant (the default), step, exponential or cosine'),
    warmup: z
      .number()
      .min(0)
      .default(0)
      .describe('epochs (fractions allowed) of linear warm-up to lr before the schedule'),
    epochs: z.int().min(1).default(1).describe('passes over the training data'),
    steps: z.int().min(1).optional().describe('cap on the number of updates'),
    reduction: z
      .enum(['mean', 'sum'])
      .default('mean')
      .describe('gradient of the batch mean loss, or of the summed per-sample losses'),
    momentum: z.number().min(0).lt(1).default(0).describe('momentum factor (0: plain SGD)'),
    nesterov: z.boolean().default(false).describe('Nesterov momentum (needs momentum > 0)'),
    weightDecay: z.number().min(0).default(0).describe('L2 penalty on the feature weights (not the bias)'),
    clipNorm: z.number().min(0).default(0).describe('clip the gradient to this L2 norm (0: off)'),
    init: initSchema
      .default({ type: 'normal', mean: 0, std: 0.01 })
      .describe('initial weights: zeros, or normal with mean and std'),
    seed: z.int().min(0).max(0xffffffff).optional().describe('seed of the weight initialiser'),
    logEvery: z.int().min(1).default(100).describe('steps between train events'),
  })
  .superRefine((s, ctx) => {
    if (s.nesterov && s.momentum === 0)
      ctx.addIssue({ code: 'custom', path: ['nesterov'], message: 'Nesterov momentum needs momentum > 0' });
  });
export type SgdSettings = z.output<typeof sgdSettings>;

const float32Array = z.custom<Float32Array>((v) => v instanceof Float32Array, 'expected a Float32Array');

/** What a checkpoint keeps of the updater: its weights, optimiser buffer and counters. */
export const sgdState = z.strictObject({
  step: z.int().min(0),
  samples: z.int().min(0),
  /** The pass of the last block seen (−1 before the first). */
  epoch: z.int().min(-1),
  /** Sums since the last train event. */
  interval: z.strictObject({ loss: z.number(), correct: z.number(), samples: z.number() }),
  rows: z.int().min(1),
  classes: z.int().min(1),
  weights: float32Array,
  /** Momentum buffer, rows × classes, when momentum > 0. */
  velocity: float32Array.optional(),
});
export type SgdState = z.output<typeof sgdState>;

/** Most rows one forward pass of the kernel takes; larger batches go through in chunks. */
const CHUNK_ROWS = 512;

export const sgdStage = defineStage<SgdSettings, SgdState>({
  type: 'sgd',
  summary: 'softmax regression trained by mini-batch SGD: schedules, momentum, weight decay, clipping',
  settings: sgdSettings,
  describeProgress: describeSgdProgress,
  wiring: sgdWiring,
  state: sgdState,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const gate = ctx.training;
      const batches = new MiniBatcher(settings.batchSize);
      let restored: SgdState | undefined;
      let sgd: SoftmaxSgd | undefined;
      let rows = 0;
      let classes = 0;
      let step = 0;
      let samples = 0;
      let epoch = -1;
      let interval = { loss: 0, correct: 0, samples: 0 };
      let population = 0;
      let plan: LearningRatePlan | undefined;
      let lr = settings.lr;
      let last: SampleBlock | undefined;
      let intervalStarted = ctx.clock.now();

      ctx.state({
        snapshot: () => ({
          step,
          samples,
          epoch,
          interval: { ...interval },
          rows,
          classes,
          // The weights are part of the updater's state: restoring them is what resumes training.
          weights: sgd!.kernel.readWeights(),
          ...(settings.momentum > 0 ? { velocity: sgd!.kernel.readVelocity() } : {}),
        }),
        restore: (state) => {
          restored = state;
          ({ step, samples, epoch } = state);
          interval = { ...state.interval };
        },
      });

      const epochOf = () => (population ? samples / population : 0);

      const producer: ModelProducer = {
        model: (evaluate, final): ModelSnapshot => ({
          kind: 'snapshot',
          step,
          epoch: epochOf(),
          samples,
          weights: sgd!.kernel.readWeights(),
          rows,
          classes,
          shape: last!.shape,
          ...(last!.classNames ? { classNames: last!.classNames } : {}),
          transform: last!.transform,
          evaluate,
          final,
          results: [],
        }),
        readPoint: () => batches.readPoint(),
      };

      /** The model's shape from the first block; restored or initial weights. */
      const init = (block: SampleBlock) => {
        classes = block.classes;
        rows = block.width + (block.transform.bias ? 1 : 0);
        const floats = block.data instanceof Float32Array;
        const shape = { width: block.width, classes, bias: block.transform.bias, floats };
        const kernel = new SoftmaxRegressionKernel(shape, Math.min(settings.batchSize, CHUNK_ROWS));
        sgd = new SoftmaxSgd(kernel, settings);
        const perEpoch = Math.ceil(population / settings.batchSize);
        const total = Math.min(settings.steps ?? Number.POSITIVE_INFINITY, settings.epochs * perEpoch);
        plan = planInSteps(settings.lr, settings.schedule, settings.warmup, perEpoch, total);
        if (restored) {
          if (restored.rows !== rows || restored.classes !== classes) {
            throw new RxtrainError(
              'E_RESUME',
              `sgd: the checkpoint's weights are ${restored.rows}×${restored.classes}, the data gives ${rows}×${classes}`,
            );
          }
          kernel.writeWeights(restored.weights);
          if (settings.momentum > 0 && restored.velocity) kernel.writeVelocity(restored.velocity);
          return;
        }
        kernel.writeWeights(initialWeights(rows * classes, settings.init, ctx.rng(settings.seed)));
      };

      /** What to change when the loss diverges: features far from unit scale point at normalise. */
      const divergenceHint = () => {
        const reach = last!.data instanceof Uint8Array ? byteFeatureReach(last!.transform) : 0;
        return reach > 100
          ? `the features reach ${reach.toPrecision(3)} in magnitude: check normalise.scale (1/255 maps pixels to [0, 1]), or lower sgd.lr`
          : 'lower sgd.lr';
      };

      const trainEvent = () => {
        if (interval.samples === 0) return;
        const now = ctx.clock.now();
        const seconds = (now - intervalStarted) / 1000;
        ctx.events.emit({
          type: 'train',
          step,
          epoch: epochOf(),
          samples,
          loss: interval.loss / interval.samples,
          accuracy: interval.correct / interval.samples,
          lr,
          samplesPerSec: seconds > 0 ? Math.round(interval.samples / seconds) : 0,
        });
        interval = { loss: 0, correct: 0, samples: 0 };
        intervalStarted = now;
      };

      /** One update on a batch, then what the gate says; 'stop' once the step cap is reached. */
      const update = (batch: MiniBatch, out: Emitter<Message>): StepVerdict | 'stop' => {
        lr = learningRate(plan!, step);
        const stats = sgd!.step(batch.x, batch.labels, batch.row0, batch.n, last!.transform, lr, batch.rows);
        if (!Number.isFinite(stats.loss)) {
          throw new RxtrainError(
            'E_DATA',
            `sgd: the loss became ${stats.loss} at step ${step + 1}; ${divergenceHint()}`,
          );
        }
        step++;
        samples += batch.n;
        interval.loss += stats.loss;
        interval.correct += stats.correct;
        interval.samples += batch.n;
        if (step % settings.logEvery === 0) trainEvent();
        if (settings.steps !== undefined && step >= settings.steps) return 'stop';
        return gate.afterStep(step, producer, out);
      };

      const finish = (out: Emitter<Message>, endedBy: TrainingEnd, stopReason?: string): void => {
        if (gate.ended) return;
        trainEvent();
        gate.finish(producer, out, endedBy, stopReason);
      };

      /** Go on after a verdict: finish, pause (then stop if an evaluator asked to meanwhile), or `go`. */
      const then = (
        verdict: StepVerdict | 'stop',
        out: Emitter<Message>,
        go: () => void | Promise<void>,
      ): void | Promise<void> => {
        if (verdict === 'stop') return finish(out, 'steps');
        if (verdict === 'ended') return;
        if (verdict === 'go') return go();
        return verdict.then(() => {
          if (gate.ended) return;
          const reason = gate.stopRequested;
          return reason ? finish(out, 'early-stop', reason) : go();
        });
      };

      /** Train on the current block's batches; a promise when it has to pause part-way. */
      const run = (out: Emitter<Message>): void | Promise<void> => {
        for (let batch = batches.next(); batch; batch = batches.next()) {
          const verdict = update(batch, out);
          if (verdict !== 'go') return then(verdict, out, () => run(out));
        }
        ctx.progress({
          step,
          totalSteps: plan!.total,
          epoch: epochOf(),
          loss: sgd!.stats.loss / Math.max(1, settings.batchSize),
          lr,
        } satisfies SgdCounters);
      };

      /** A pass's last, smaller batch. */
      const flush = (out: Emitter<Message>, go: () => void | Promise<void>): void | Promise<void> => {
        const batch = batches.flush();
        return batch ? then(update(batch, out), out, go) : go();
      };

      /**
       * Train on a whole block; if it ends the last pass, finish at once instead of waiting for a
       * block of the next pass (which a buffer sampler would re-read its whole input to make).
       */
      const trainBlock = (block: SampleBlock, out: Emitter<Message>): void | Promise<void> => {
        const lastOfRun = () => {
          if (gate.ended || block.epoch + 1 < settings.epochs || block.index + block.count < block.population)
            return;
          return flush(out, () => finish(out, 'epochs'));
        };
        const ran = run(out);
        return ran ? ran.then(lastOfRun) : lastOfRun();
      };

      const onBlock = (block: SampleBlock, out: Emitter<Message>): void | Promise<void> => {
        last = block;
        population = block.population;
        if (!sgd) {
          init(block);
          // Rates count training time only, not the data loading before the first block.
          intervalStarted = ctx.clock.now();
          gate.begin(producer, out, restored !== undefined);
        }
        batches.start(block);
        if (block.epoch === epoch) return trainBlock(block, out);
        // A pass ended: finish its last (smaller) batch, then stop if that was the last pass.
        return flush(out, () => {
          epoch = block.epoch;
          if (epoch >= settings.epochs) return finish(out, 'epochs');
          return trainBlock(block, out);
        });
      };

      return {
        next(message, out) {
          if (gate.ended) return;
          if (message.kind !== 'samples') {
            out.push(message);
            return;
          }
          return onBlock(message, out);
        },
        complete(out) {
          if (gate.ended) return;
          if (!sgd)
            throw new RxtrainError(
              'E_DATA',
              'sgd: no training samples arrived (is there a shuffle stage before sgd?)',
            );
          return flush(out, () => finish(out, 'input'));
        },
      };
    }),
});

/** Trains on the sample blocks of a sampler before it; provides the model to the stages after it. */
function sgdWiring() {
  return {
    needs: [{ token: 'samples', hint: 'add a sampler such as shuffle before it' }],
    provides: ['model'],
  };
}
