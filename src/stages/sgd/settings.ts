/**
 * The sgd stage's settings and checkpoint state, as schemas: what a config may say (every key
 * checked, defaults here and nowhere else) and what a checkpoint keeps of the updater.
 */
import type { z } from 'zod';
import { built, lazySchema } from '../../util/lazySchema.js';
import { overBudget } from '../../util/memory.js';
import { zod } from '../../util/zod.js';

/** A setting given as a bare string (`init: zeros`, `schedule: cosine`, `model: mlp`) means `{ type: … }`. */
const typed = <T extends z.ZodType>(schema: T) =>
  zod()
    .preprocess((v) => (typeof v === 'string' ? { type: v } : v), schema)
    .meta({ shorthand: 'type' });

const initSchema = lazySchema((z) =>
  typed(
    z.discriminatedUnion('type', [
      z.strictObject({
        type: z.literal('normal'),
        mean: z.number().default(0),
        std: z.number().min(0).default(0.01),
      }),
      z.strictObject({ type: z.literal('zeros') }),
    ]),
  ),
);
const scheduleSchema = lazySchema((z) =>
  typed(
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
  ),
);
const modelSchema = lazySchema((z) =>
  typed(
    z.discriminatedUnion('type', [
      z.strictObject({ type: z.literal('softmax') }),
      z.strictObject({
        type: z.literal('mlp'),
        hidden: z
          .array(z.int().min(1).max(16384))
          .min(1)
          .max(16)
          .default([128])
          .describe('units of each hidden layer, input side first'),
        activation: z.enum(['relu', 'tanh']).default('relu').describe('the hidden layers’ activation'),
        init: z
          .enum(['he', 'xavier', 'normal'])
          .default('he')
          .describe('initial weights: N(0, 2/fan_in), N(0, 2/(fan_in + fan_out)) or N(0, std²); biases 0'),
        std: z.number().positive().default(0.01).describe('standard deviation of init: normal'),
      }),
    ]),
  ),
);
export type ModelSettings = z.output<typeof modelSchema>;

export const sgdSettings = lazySchema((z) =>
  z
    .strictObject({
      model: built(modelSchema)
        .default({ type: 'softmax' })
        .describe('softmax (regression, the default) or mlp: {type: mlp, hidden: [128], activation, init}'),
      batchSize: z.int().min(1).max(65536).default(64).describe('samples per update (1: the notebook)'),
      lr: z.number().positive().default(0.1).describe('learning rate (the peak, with a schedule)'),
      schedule: built(scheduleSchema)
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
      weightDecay: z.number().min(0).default(0).describe('L2 penalty on the weights (not the biases)'),
      clipNorm: z.number().min(0).default(0).describe('clip the gradient to this L2 norm (0: off)'),
      init: built(initSchema)
        .default({ type: 'normal', mean: 0, std: 0.01 })
        .describe(
          'softmax regression’s initial weights: zeros, or normal with mean and std (an MLP’s: model.init)',
        ),
      seed: z.int().min(0).max(0xffffffff).optional().describe('seed of the weight initialiser'),
      logEvery: z.int().min(1).default(100).describe('steps between train events'),
    })
    .superRefine((s, ctx) => {
      if (s.nesterov && s.momentum === 0)
        ctx.addIssue({ code: 'custom', path: ['nesterov'], message: 'Nesterov momentum needs momentum > 0' });
      const problem =
        s.model.type === 'mlp' ? overBudget('this MLP', mlpPlannedBytes(s.model.hidden, s)) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', path: ['model', 'hidden'], message: problem });
    }),
);

/**
 * What an MLP's hidden layers need whatever the data: the parameters between hidden layers (float32
 * weights, their gradient, a checkpoint's copy, and the velocity with momentum) and a batch's
 * activations and their gradients. The input and output layers, which depend on the data, come on
 * top, so this is a floor: a config above it can never run on this machine.
 */
export function mlpPlannedBytes(
  hidden: readonly number[],
  s: { batchSize: number; momentum: number },
): number {
  let params = 0;
  for (let i = 1; i < hidden.length; i++) params += (hidden[i - 1]! + 1) * hidden[i]!;
  const copies = s.momentum > 0 ? 4 : 3;
  const activations = 2 * s.batchSize * hidden.reduce((a, b) => a + b, 0);
  return 4 * (copies * params + activations);
}
export type SgdSettings = z.output<typeof sgdSettings>;

const float32Array = lazySchema((z) =>
  z.custom<Float32Array>((v) => v instanceof Float32Array, 'expected a Float32Array'),
);

/** What a checkpoint keeps of the updater: its weights, optimiser buffer and counters. */
export const sgdState = lazySchema((z) =>
  z.strictObject({
    step: z.int().min(0),
    samples: z.int().min(0),
    /** The pass of the last block seen (−1 before the first). */
    epoch: z.int().min(-1),
    /** Sums since the last train event. */
    interval: z.strictObject({ loss: z.number(), correct: z.number(), samples: z.number() }),
    /** The first layer's rows (inputs, +1 bias) and the classes: the shape the data gave. */
    rows: z.int().min(1),
    classes: z.int().min(1),
    /** An MLP's hidden layers (absent for softmax regression). */
    hidden: z.array(z.int().min(1)).optional(),
    /** Every parameter, in the model-file layout (kernels/architecture.ts). */
    weights: built(float32Array),
    /** Momentum buffer, the weights' shape, when momentum > 0. */
    velocity: built(float32Array).optional(),
  }),
);
export type SgdState = z.output<typeof sgdState>;
