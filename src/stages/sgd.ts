/**
 * sgd — train a model by stochastic gradient descent: softmax (multinomial logistic) regression,
 * or a multi-layer perceptron (`model: {type: mlp, hidden: [128], activation: relu}`). The model
 * is built from the settings and the first block of samples (sgd/model.ts); the schemas are in
 * sgd/settings.ts.
 *
 * Consumes sample blocks, cuts them into mini-batches (`batchSize: 1` is the notebook's single
 * pattern per step; batches never span passes, so a pass may end with a smaller batch) and takes
 * one step per batch with PyTorch's SGD rule (src/kernels/sgdStep.ts):
 *   g = ∇ loss, where loss is the batch's mean cross-entropy (`reduction: mean`, PyTorch's
 *       default) or its summed cross-entropy (`reduction: sum`: one `outer(Φᵢ, yᵢ − tᵢ)` per sample,
 *       as in the notebook; the two agree at batch size 1, and `sum` is `mean` with lr·batchSize)
 *   g ← g·min(1, clipNorm/‖g‖);  g ← g + weightDecay·W (not the bias rows);
 *   v ← momentum·v + g;  W ← W − lr_t·(nesterov ? g + momentum·v : v)
 * with lr_t from `schedule` after a linear `warmup` (durations in epochs, fractions allowed).
 * Softmax regression's weights start `normal` (mean, std; the notebook uses N(0, 1)) or at
 * `zeros`; an MLP's as `model.init` says (he, xavier or normal; biases 0).
 *
 * Stops after `steps` updates or `epochs` passes, whichever comes first, or when an evaluator's
 * early stopping asks it to. Emits a `train` event every `logEvery` steps. After every update it
 * asks the pipeline's training gate (pipeline/training.ts), which sends model snapshots to the
 * evaluators and checkpoint barriers as the pipeline's policy says; the stage itself only
 * answers `snapshot()`/`restore()` with its weights and counters. Other messages pass through.
 *
 * The stage is three steps: the batching helper (pipeline/miniBatches.ts) → the learning rate of
 * this update (kernels/schedule.ts, a pure function of the step) → one kernel step
 * (kernels/sgdStep.ts).
 *
 * @example
 *   - type: sgd
 *     batchSize: 64
 *     lr: 0.1
 *     epochs: 5
 *     schedule: { type: cosine, min: 0 }
 *     momentum: 0.9
 *   - type: sgd
 *     model: { type: mlp, hidden: [128], activation: relu, init: he }
 *     lr: 0.5
 *     schedule: cosine
 */

import { type Emitter, transform } from '../flow/index.js';
import type { Architecture } from '../kernels/architecture.js';
import { byteFeatureReach } from '../kernels/features.js';
import { type LearningRatePlan, learningRate, planInSteps } from '../kernels/schedule.js';
import type { ModelSgd } from '../kernels/sgdStep.js';
import type { Message, ModelSnapshot, SampleBlock, TrainingEnd } from '../pipeline/messages.js';
import { type MiniBatch, MiniBatcher } from '../pipeline/miniBatches.js';
import { defineStage } from '../pipeline/stage.js';
import type { ModelProducer, StepVerdict } from '../pipeline/training.js';
import { RxtrainError } from '../util/errors.js';
import { architectureOf, startModel, stateShape } from './sgd/model.js';
import { describeSgdProgress, type SgdCounters } from './sgd/progress.js';
import { type SgdSettings, type SgdState, sgdSettings, sgdState } from './sgd/settings.js';

export type { SgdCounters };

export { type SgdSettings, type SgdState, sgdSettings, sgdState };

export const sgdStage = defineStage<SgdSettings, SgdState>({
  type: 'sgd',
  summary:
    'softmax regression or an MLP trained by mini-batch SGD: schedules, momentum, weight decay, clipping',
  settings: sgdSettings,
  describeProgress: describeSgdProgress,
  // Sample blocks end here: the softmax kernel keeps the rows of a table handed over in place.
  takesSampleTables: true,
  wiring: sgdWiring,
  state: sgdState,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const gate = ctx.training;
      const batches = new MiniBatcher(settings.batchSize);
      let restored: SgdState | undefined;
      let sgd: ModelSgd | undefined;
      let architecture: Architecture | undefined;
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
          ...stateShape(architecture!),
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
          architecture: architecture!,
          classes: architecture!.classes,
          transform: last!.transform,
          evaluate,
          final,
          results: [],
          shape: last!.shape,
          ...(last!.classNames ? { classNames: last!.classNames } : {}),
        }),
        readPoint: () => batches.readPoint(),
      };

      /** The model from the settings and the first block; restored or initial weights. */
      const init = (block: SampleBlock) => {
        architecture = architectureOf(settings.model, block);
        sgd = startModel(settings, architecture, block, () => ctx.rng(settings.seed), restored);
        const perEpoch = Math.ceil(population / settings.batchSize);
        const total = Math.min(settings.steps ?? Number.POSITIVE_INFINITY, settings.epochs * perEpoch);
        plan = planInSteps(settings.lr, settings.schedule, settings.warmup, perEpoch, total);
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
        const stats = sgd!.step(
          batch.x,
          batch.labels,
          batch.row0,
          batch.n,
          last!.transform,
          lr,
          batch.rows,
          batch.reusable,
        );
        if (!Number.isFinite(stats.loss)) {
          trainEvent(); // the steps done before this one, for the log and the summary
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
