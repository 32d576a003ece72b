/**
 * sgd — train softmax (multinomial logistic) regression by stochastic gradient descent.
 *
 * Consumes sample blocks, cuts them into mini-batches (`batchSize: 1` is the notebook's single
 * pattern per step; batches never span passes, so a pass may end with a smaller batch) and takes
 * one step per batch: W ← W − lr · g, where g is the gradient of the batch's mean cross-entropy
 * (`reduction: mean`, PyTorch's default) or of its summed cross-entropy (`reduction: sum`, one
 * `outer(Φᵢ, yᵢ − tᵢ)` per sample as in the notebook; the two agree at batch size 1).
 * Weights start `normal` (mean, std; the notebook uses N(0, 1)) or at `zeros`.
 *
 * Stops after `steps` updates or `epochs` passes, whichever comes first. Emits a `train` event
 * every `logEvery` steps; emits a model snapshot whenever a stage downstream asked for one (the
 * evaluator's schedule) and at the end; and, under the pipeline's checkpoint policy, a checkpoint
 * barrier that holds its own state and the sampler's position, pausing until it is written.
 * Other messages pass through.
 *
 * @example
 *   - type: sgd
 *     batchSize: 64
 *     lr: 0.1
 *     epochs: 5
 */
import { z } from 'zod';
import { SoftmaxSgd } from '../kernels/sgdStep.js';
import { RxtrainError } from '../pipeline/errors.js';
import { type Emitter, transform } from '../pipeline/flow.js';
import {
  type CheckpointBarrier,
  createBarrier,
  type Message,
  type ModelSnapshot,
  type SampleBlock,
} from '../pipeline/messages.js';
import { defineStage } from '../pipeline/stage.js';

const initSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { type: v } : v),
  z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('normal'),
      mean: z.number().default(0),
      std: z.number().min(0).default(0.01),
    }),
    z.strictObject({ type: z.literal('zeros') }),
  ]),
);

export const sgdSettings = z.strictObject({
  batchSize: z.int().min(1).max(65536).default(64).describe('samples per update (1: the notebook)'),
  lr: z.number().positive().default(0.1).describe('learning rate'),
  epochs: z.int().min(1).default(1).describe('passes over the training data'),
  steps: z.int().min(1).optional().describe('cap on the number of updates'),
  reduction: z
    .enum(['mean', 'sum'])
    .default('mean')
    .describe('gradient of the batch mean loss, or of the summed per-sample losses'),
  init: initSchema
    .default({ type: 'normal', mean: 0, std: 0.01 })
    .describe('initial weights: zeros, or normal with mean and std'),
  seed: z.int().min(0).max(0xffffffff).optional().describe('seed of the weight initialiser'),
  logEvery: z.int().min(1).default(100).describe('steps between train events'),
});
export type SgdSettings = z.output<typeof sgdSettings>;

/** What a checkpoint keeps of the updater besides the weights. */
export interface SgdState {
  step: number;
  samples: number;
  epoch: number;
  interval: { loss: number; correct: number; samples: number };
  rows: number;
  classes: number;
}

/** How restored weights reach the stage (the checkpoint loader decodes them). */
export interface SgdRestore extends SgdState {
  weights: Float32Array;
}

export const sgdStage = defineStage<SgdSettings>({
  type: 'sgd',
  summary: 'softmax regression trained by mini-batch stochastic gradient descent',
  settings: sgdSettings,
  stateful: true,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const restored = ctx.restored as SgdRestore | undefined;
      const B = settings.batchSize;
      let W: Float32Array | undefined;
      let kernel: SoftmaxSgd | undefined;
      let rows = 0;
      let classes = 0;
      let step = restored?.step ?? 0;
      let samples = restored?.samples ?? 0;
      let epoch = restored?.epoch ?? -1;
      const interval = restored ? { ...restored.interval } : { loss: 0, correct: 0, samples: 0 };
      let batchX: Uint8Array | Float32Array | undefined;
      const batchY = new Int32Array(B);
      let fill = 0;
      let finished = false;
      let population = 0;
      let last: SampleBlock | undefined;
      let resume: { position: unknown; skip: number; sampler: string } | undefined;
      let lastCheckpointAt = ctx.clock.now();
      let intervalStarted = ctx.clock.now();
      let sliceStarted = ctx.clock.now();
      /** Inside next() or complete(), as opposed to a continuation after a pause. */
      let handling = false;

      const totalSteps = () => {
        const perEpoch = Math.ceil(population / B);
        return Math.min(settings.steps ?? Number.POSITIVE_INFINITY, settings.epochs * perEpoch);
      };

      const init = (block: SampleBlock) => {
        lastCheckpointAt = ctx.clock.now(); // time-based checkpoints count from the first step
        classes = block.classes;
        rows = block.width + (block.transform.bias ? 1 : 0);
        kernel = new SoftmaxSgd(classes, B);
        batchX =
          block.data instanceof Float32Array
            ? new Float32Array(B * block.width)
            : new Uint8Array(B * block.width);
        if (restored) {
          if (restored.rows !== rows || restored.classes !== classes) {
            throw new RxtrainError(
              'E_RESUME',
              `sgd: the checkpoint's weights are ${restored.rows}×${restored.classes}, the data gives ${rows}×${classes}`,
            );
          }
          W = restored.weights.slice();
          return;
        }
        W = new Float32Array(rows * classes);
        if (settings.init.type === 'normal') {
          const rng = ctx.rng(settings.seed);
          const { mean, std } = settings.init;
          for (let i = 0; i < W.length; i++) W[i] = mean + std * rng.normal();
        }
      };

      const snapshot = (
        evaluate: boolean,
        final: boolean,
        checkpoint?: CheckpointBarrier,
      ): ModelSnapshot => ({
        kind: 'snapshot',
        step,
        epoch: population ? samples / population : 0,
        samples,
        weights: W!.slice(),
        rows,
        classes,
        transform: last!.transform,
        evaluate,
        final,
        results: [],
        checkpoint,
      });

      const state = (): SgdState => ({ step, samples, epoch, interval: { ...interval }, rows, classes });

      const barrier = (reason: CheckpointBarrier['reason']): CheckpointBarrier => {
        const b = createBarrier(reason);
        // The weights are part of the updater's state: restoring them is what resumes training.
        b.states[ctx.id] = { ...state(), weights: W!.slice() } satisfies SgdRestore;
        if (resume) b.states[resume.sampler] = { position: resume.position, skip: resume.skip };
        return b;
      };

      const trainEvent = () => {
        if (interval.samples === 0) return;
        const now = ctx.clock.now();
        const seconds = (now - intervalStarted) / 1000;
        ctx.events.emit({
          type: 'train',
          step,
          epoch: population ? samples / population : 0,
          samples,
          loss: interval.loss / interval.samples,
          accuracy: interval.correct / interval.samples,
          lr: settings.lr,
          samplesPerSec: seconds > 0 ? Math.round(interval.samples / seconds) : 0,
        });
        interval.loss = 0;
        interval.correct = 0;
        interval.samples = 0;
        intervalStarted = now;
      };

      /** One update on rows row0 … row0+n−1 of x. */
      const update = (x: Uint8Array | Float32Array, y: Int32Array, row0: number, n: number) => {
        const eta = settings.reduction === 'mean' ? settings.lr / n : settings.lr;
        const stats = kernel!.step(W!, x, y, row0, n, last!.transform, eta);
        if (!Number.isFinite(stats.loss)) {
          throw new RxtrainError(
            'E_DATA',
            `sgd: the loss became ${stats.loss} at step ${step + 1}; lower sgd.lr`,
          );
        }
        step++;
        samples += n;
        interval.loss += stats.loss;
        interval.correct += stats.correct;
        interval.samples += n;
        if (step % settings.logEvery === 0) trainEvent();
        ctx.progress({
          step,
          totalSteps: totalSteps(),
          epoch: population ? samples / population : 0,
          loss: stats.loss / n,
        });
      };

      const finish = (out: Emitter<Message>): void | Promise<void> => {
        if (finished) return;
        finished = true;
        trainEvent();
        const cp = ctx.checkpoints.atEnd ? barrier('final') : undefined;
        out.push(snapshot(true, true, cp));
        out.end();
        return cp?.written;
      };

      /** After an update: snapshots, checkpoints, stop conditions, yielding. */
      const afterStep = (out: Emitter<Message>): 'go' | 'stop' | Promise<void> => {
        if (settings.steps !== undefined && step >= settings.steps) return 'stop';
        const stopping = ctx.checkpoints.onSignal && ctx.stopSignal.aborted;
        const due =
          stopping ||
          (ctx.checkpoints.every > 0 && step % ctx.checkpoints.every === 0) ||
          (ctx.checkpoints.everySeconds > 0 &&
            ctx.clock.now() - lastCheckpointAt >= ctx.checkpoints.everySeconds * 1000);
        const wanted = ctx.snapshots.wants(step);
        if (stopping) {
          finished = true;
          const cp = barrier('signal');
          out.push(snapshot(false, false, cp));
          out.end();
          return cp.written;
        }
        if (due || wanted) {
          const byStep = ctx.checkpoints.every > 0 && step % ctx.checkpoints.every === 0;
          const cp = due ? barrier(byStep ? 'interval' : 'time') : undefined;
          out.push(snapshot(wanted, false, cp));
          if (cp) {
            // In a continuation (after an earlier barrier) nothing delivers the queue until our
            // promise settles, so ask for a delivery pass. Not inside next()/complete(): there the
            // pass would also fetch the next block and re-enter next() before this one is done.
            if (!handling) out.wake();
            // everySeconds counts from when the previous checkpoint was durable.
            return cp.written.then(() => {
              lastCheckpointAt = ctx.clock.now();
            });
          }
        }
        if (ctx.clock.now() - sliceStarted >= ctx.sliceMs) {
          // Let timers, I/O and signal handlers run: a long synchronous loop would starve them.
          return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
            sliceStarted = ctx.clock.now();
          });
        }
        return 'go';
      };

      /** Train on `block` from sample `from`; a promise when it has to pause part-way. */
      const run = (block: SampleBlock, from: number, out: Emitter<Message>): void | Promise<void> => {
        let i = from;
        while (i < block.count) {
          let n: number;
          if (fill === 0 && block.count - i >= B) {
            update(block.data, block.labels, i, B);
            n = B;
          } else {
            n = Math.min(B - fill, block.count - i);
            batchX!.set(
              block.data.subarray(i * block.width, (i + n) * block.width) as never,
              fill * block.width,
            );
            batchY.set(block.labels.subarray(i, i + n), fill);
            fill += n;
            i += n;
            if (fill < B) continue;
            update(batchX!, batchY, 0, B);
            fill = 0;
            n = 0;
          }
          i += n;
          resume = { sampler: block.sampler, position: block.position, skip: i };
          const next = afterStep(out);
          if (next === 'stop') return finish(out);
          if (next !== 'go') return next.then(() => (finished ? undefined : run(block, i, out)));
          if (finished) return;
        }
      };

      const flushPartial = (out: Emitter<Message>): 'go' | 'stop' | Promise<void> => {
        if (fill === 0) return 'go';
        update(batchX!, batchY, 0, fill);
        fill = 0;
        return afterStep(out);
      };

      const onBlock = (block: SampleBlock, out: Emitter<Message>): void | Promise<void> => {
        const first = !W;
        last = block;
        population = block.population;
        if (first) {
          init(block);
          if (!restored && ctx.snapshots.atStart) out.push(snapshot(true, false));
        }
        if (block.epoch !== epoch) {
          // A pass ended: finish its last (smaller) batch, then stop if that was the last pass.
          resume = { sampler: block.sampler, position: block.position, skip: 0 };
          const flushed = flushPartial(out);
          if (flushed === 'stop') return finish(out);
          epoch = block.epoch;
          if (epoch >= settings.epochs) return finish(out);
          if (flushed !== 'go') return flushed.then(() => (finished ? undefined : run(block, 0, out)));
        }
        return run(block, 0, out);
      };

      return {
        next(message, out) {
          if (finished) return;
          if (message.kind !== 'samples') {
            out.push(message);
            return;
          }
          handling = true;
          try {
            return onBlock(message, out);
          } finally {
            handling = false;
          }
        },
        complete(out) {
          if (finished) return;
          if (!W)
            throw new RxtrainError(
              'E_DATA',
              'sgd: no training samples arrived (is there a shuffle stage before sgd?)',
            );
          handling = true;
          try {
            const flushed = flushPartial(out);
            if (flushed === 'go' || flushed === 'stop') return finish(out);
            return flushed.then(() => finish(out));
          } finally {
            handling = false;
          }
        },
      };
    }),
});
