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
 * early stopping asks it to. Emits a `train` event every `logEvery` steps; a model snapshot
 * whenever a stage downstream asked for one (the evaluator's schedule) and at the end; and, under
 * the pipeline's checkpoint policy, a checkpoint barrier that holds its own state and the
 * sampler's position, pausing until it is written. Other messages pass through.
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
import { type LearningRatePlan, learningRate, type ScheduleShape } from '../kernels/schedule.js';
import { SoftmaxSgd } from '../kernels/sgdStep.js';
import { SoftmaxRegressionKernel } from '../kernels/softmaxRegression.js';
import {
  type CheckpointBarrier,
  createBarrier,
  type Message,
  type ModelSnapshot,
  type SampleBlock,
  sampleRow,
} from '../pipeline/messages.js';
import { defineStage } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';

/** A setting given as a bare string (`init: zeros`, `schedule: cosine`) means `{ type: … }`. */
const typed = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' ? { type: v } : v), schema);

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

/** What a checkpoint keeps of the updater besides the weights. */
export interface SgdState {
  step: number;
  samples: number;
  epoch: number;
  interval: { loss: number; correct: number; samples: number };
  rows: number;
  classes: number;
  /** Momentum buffer, rows × classes, when momentum > 0. */
  velocity?: Float32Array;
}

/** How restored weights reach the stage (the checkpoint loader decodes them). */
export interface SgdRestore extends SgdState {
  weights: Float32Array;
}

/** Most rows one forward pass of the kernel takes; larger batches go through in chunks. */
const CHUNK_ROWS = 512;

export const sgdStage = defineStage<SgdSettings>({
  type: 'sgd',
  summary: 'softmax regression trained by mini-batch SGD: schedules, momentum, weight decay, clipping',
  settings: sgdSettings,
  describeProgress: describeSgdProgress,
  stateful: true,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const restored = ctx.restored as SgdRestore | undefined;
      const B = settings.batchSize;
      let sgd: SoftmaxSgd | undefined;
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
      let plan: LearningRatePlan | undefined;
      let lr = settings.lr;
      let last: SampleBlock | undefined;
      let resume: { position: unknown; skip: number; sampler: string } | undefined;
      let lastCheckpointAt = ctx.clock.now();
      let intervalStarted = ctx.clock.now();
      let sliceStarted = ctx.clock.now();

      const totalSteps = () => {
        const perEpoch = Math.ceil(population / B);
        return Math.min(settings.steps ?? Number.POSITIVE_INFINITY, settings.epochs * perEpoch);
      };

      const init = (block: SampleBlock) => {
        lastCheckpointAt = ctx.clock.now(); // time-based checkpoints count from the first step
        classes = block.classes;
        rows = block.width + (block.transform.bias ? 1 : 0);
        const floats = block.data instanceof Float32Array;
        const kernel = new SoftmaxRegressionKernel(
          { width: block.width, classes, bias: block.transform.bias, floats },
          Math.min(B, CHUNK_ROWS),
        );
        sgd = new SoftmaxSgd(kernel, settings);
        batchX = floats ? new Float32Array(B * block.width) : new Uint8Array(B * block.width);
        const perEpoch = Math.ceil(population / B);
        const epochs = (n: number) => Math.max(1, Math.round(n * perEpoch));
        const s = settings.schedule;
        const schedule: ScheduleShape =
          s.type === 'step'
            ? { type: 'step', every: epochs(s.every), gamma: s.gamma }
            : s.type === 'exponential'
              ? { type: 'exponential', period: perEpoch, gamma: s.gamma }
              : s;
        plan = {
          lr: settings.lr,
          schedule,
          warmup: settings.warmup > 0 ? epochs(settings.warmup) : 0,
          total: totalSteps(),
        };
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
        const W = new Float32Array(rows * classes);
        if (settings.init.type === 'normal') {
          const rng = ctx.rng(settings.seed);
          const { mean, std } = settings.init;
          for (let i = 0; i < W.length; i++) W[i] = mean + std * rng.normal();
        }
        kernel.writeWeights(W);
      };

      const snapshot = (
        evaluate: boolean,
        final: boolean,
        checkpoint?: CheckpointBarrier,
        stopReason?: string,
      ): ModelSnapshot => ({
        kind: 'snapshot',
        step,
        epoch: population ? samples / population : 0,
        samples,
        weights: sgd!.kernel.readWeights(),
        rows,
        classes,
        transform: last!.transform,
        evaluate,
        final,
        results: [],
        checkpoint,
        ...(stopReason ? { stopReason } : {}),
      });

      const state = (): SgdState => ({
        step,
        samples,
        epoch,
        interval: { ...interval },
        rows,
        classes,
        ...(settings.momentum > 0 ? { velocity: sgd!.kernel.readVelocity() } : {}),
      });

      const barrier = (reason: CheckpointBarrier['reason']): CheckpointBarrier => {
        const b = createBarrier(reason);
        // The weights are part of the updater's state: restoring them is what resumes training.
        b.states[ctx.id] = { ...state(), weights: sgd!.kernel.readWeights() } satisfies SgdRestore;
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
          lr,
          samplesPerSec: seconds > 0 ? Math.round(interval.samples / seconds) : 0,
        });
        interval.loss = 0;
        interval.correct = 0;
        interval.samples = 0;
        intervalStarted = now;
      };

      /** One update on rows row0 … row0+n−1 of x. */
      const update = (
        x: Uint8Array | Float32Array,
        y: Int32Array,
        row0: number,
        n: number,
        index?: Int32Array,
      ) => {
        lr = learningRate(plan!, step);
        const stats = sgd!.step(x, y, row0, n, last!.transform, lr, index);
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
      };

      const finish = (out: Emitter<Message>, stopReason?: string): void | Promise<void> => {
        if (finished) return;
        finished = true;
        trainEvent();
        const cp = ctx.checkpoints.atEnd ? barrier(stopReason ? 'early-stop' : 'final') : undefined;
        out.push(snapshot(true, true, cp, stopReason));
        out.end();
        return cp?.written;
      };

      /** An evaluator asked to stop: the request is for a step this stage has reached. */
      const stopRequested = () => ctx.training?.stopRequest?.reason;

      /** After an update: snapshots, checkpoints, stop conditions, yielding. */
      const afterStep = (out: Emitter<Message>): 'go' | 'stop' | Promise<void> => {
        // Progress counters are sampled every progressIntervalMs: once per block is plenty.
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
          // With early stopping on, wait for the verdict on this step, so where training stops
          // depends on the data alone, never on how far ahead of the evaluator this stage ran.
          const verdict = wanted ? ctx.training?.verdicts(step) : undefined;
          if (cp || verdict) {
            return Promise.all([cp?.written, verdict]).then(() => {
              // everySeconds counts from when the previous checkpoint was durable.
              if (cp) lastCheckpointAt = ctx.clock.now();
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

      /** Continue after a pause: stop if an evaluator asked to meanwhile. */
      const resumeAfter = (pause: Promise<void>, out: Emitter<Message>, go: () => void | Promise<void>) =>
        pause.then(() => {
          if (finished) return;
          const reason = stopRequested();
          if (reason) return finish(out, reason);
          return go();
        });

      /** Train on `block` from sample `from`; a promise when it has to pause part-way. */
      const run = (block: SampleBlock, from: number, out: Emitter<Message>): void | Promise<void> => {
        let i = from;
        while (i < block.count) {
          let n: number;
          if (fill === 0 && block.count - i >= B) {
            // A whole batch inside the block: the kernel reads it straight from the block (or from
            // the sampler's table, by row number).
            update(block.data, block.labels, i, B, block.rows);
            n = B;
          } else {
            // A batch across blocks (or a pass's end) is gathered here first.
            n = Math.min(B - fill, block.count - i);
            const w = block.width;
            for (let k = 0; k < n; k++) {
              const r = sampleRow(block, i + k);
              batchX!.set(block.data.subarray(r * w, r * w + w) as never, (fill + k) * w);
              batchY[fill + k] = block.labels[r]!;
            }
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
          if (next !== 'go') return resumeAfter(next, out, () => run(block, i, out));
          if (finished) return;
        }
        ctx.progress({
          step,
          totalSteps: plan!.total,
          epoch: population ? samples / population : 0,
          loss: sgd!.stats.loss / Math.max(1, B),
          lr,
        });
      };

      const flushPartial = (out: Emitter<Message>): 'go' | 'stop' | Promise<void> => {
        if (fill === 0) return 'go';
        update(batchX!, batchY, 0, fill);
        fill = 0;
        return afterStep(out);
      };

      const onBlock = (block: SampleBlock, out: Emitter<Message>): void | Promise<void> => {
        const first = !sgd;
        last = block;
        population = block.population;
        if (first) {
          init(block);
          // Rates count training time only, not the data loading before the first block.
          intervalStarted = ctx.clock.now();
          sliceStarted = intervalStarted;
          if (!restored && ctx.snapshots.atStart) out.push(snapshot(true, false));
        }
        if (block.epoch !== epoch) {
          // A pass ended: finish its last (smaller) batch, then stop if that was the last pass.
          resume = { sampler: block.sampler, position: block.position, skip: 0 };
          const flushed = flushPartial(out);
          if (flushed === 'stop') return finish(out);
          epoch = block.epoch;
          if (epoch >= settings.epochs) return finish(out);
          if (flushed !== 'go') return resumeAfter(flushed, out, () => trainBlock(block, out));
        }
        return trainBlock(block, out);
      };

      /**
       * Train on a whole block; if it ends the last pass, finish at once instead of waiting for a
       * block of the next pass (which a buffer sampler would re-read its whole input to make).
       */
      const trainBlock = (block: SampleBlock, out: Emitter<Message>): void | Promise<void> => {
        const lastOfRun = () => {
          if (finished || block.epoch + 1 < settings.epochs || block.index + block.count < block.population)
            return;
          const flushed = flushPartial(out);
          if (flushed === 'go' || flushed === 'stop') return finish(out);
          return resumeAfter(flushed, out, () => finish(out));
        };
        const ran = run(block, 0, out);
        return ran ? ran.then(lastOfRun) : lastOfRun();
      };

      return {
        next(message, out) {
          if (finished) return;
          if (message.kind !== 'samples') {
            out.push(message);
            return;
          }
          return onBlock(message, out);
        },
        complete(out) {
          if (finished) return;
          if (!sgd)
            throw new RxtrainError(
              'E_DATA',
              'sgd: no training samples arrived (is there a shuffle stage before sgd?)',
            );
          const flushed = flushPartial(out);
          if (flushed === 'go' || flushed === 'stop') return finish(out);
          return resumeAfter(flushed, out, () => finish(out));
        },
      };
    }),
});

import type { ProgressView, RunProgress } from '../pipeline/stage.js';
import { count } from '../progress/format.js';

/** What sgd reports with `ctx.progress`, once per block of samples. */
export interface SgdCounters {
  /** Updates done, and planned in all. */
  step: number;
  totalSteps: number;
  /** Passes over the training population so far (0 while its size is unknown). */
  epoch: number;
  /** The last batch's mean loss. */
  loss: number;
  /** The learning rate of the last update. */
  lr: number;
}

/**
 * `step 1,000/4,000  epoch 1.25  loss 0.4100  64,000 samples/s`; the renderer adds the ETA. The
 * train events' numbers win over the sampled counters: their loss is the mean since the last one,
 * the counter's one batch's.
 */
export function describeSgdProgress(c: Partial<SgdCounters>, run: RunProgress): ProgressView {
  const { train } = run;
  const step = Math.max(c.step ?? 0, train?.step ?? 0);
  const total = c.totalSteps;
  const parts = [`step ${count(step)}${total ? `/${count(total)}` : ''}`];
  const epoch = train && train.step >= step ? train.epoch : c.epoch;
  if (epoch !== undefined) parts.push(`epoch ${epoch.toFixed(2)}`);
  const loss = train?.loss ?? c.loss;
  if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
  if (train) parts.push(`${count(train.samplesPerSec)} samples/s`);
  const training = c.step !== undefined || train !== undefined;
  return { text: parts.join('  '), steps: training ? { done: step, total } : undefined, keep: true };
}
