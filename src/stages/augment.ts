/**
 * augment — fresh random variants of the training samples, every pass.
 *
 * Placed between the sampler and the trainer, it transforms each sample of each block it passes
 * on: a random translation by up to ±`translate` pixels, a horizontal `flip` half the time (for
 * data without a handedness — not digits or letters), and additive Gaussian `noise` (standard
 * deviation in the data's raw units: 25.5 is 0.1 after `normalise`'s x/255). Examples are images
 * of shape [H, W] or channels-first [C, H, W].
 *
 * Each sample's randomness comes from its own generator, seeded from the stage's seed, the pass
 * and the sample's index in the pass (util/random.ts `sampleSeed`): a sample drawn in two passes
 * gets two different variants, and a resumed run — whose sampler restarts mid-block, cut
 * elsewhere — gives every sample exactly what it got the first time. Nothing else is kept, so the
 * stage has no state to checkpoint.
 *
 * A sampler's block may index a table shared by every block (`SampleBlock.rows`), which must
 * never change; this stage sends new blocks holding their own data instead: bytes when only
 * moving pixels, float32 with noise. Other messages pass through.
 *
 * @example
 *   - type: shuffle
 *   - type: augment
 *     translate: 2
 *     noise: 12.75
 *   - type: sgd
 */
import type { z } from 'zod';
import { transform } from '../flow/index.js';
import { type AugmentPlan, augmentSample, type ImageLayout, imageLayout } from '../kernels/augment.js';
import { type Message, type SampleBlock, sampleRow } from '../pipeline/messages.js';
import { defineStage, type ProgressView } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { count } from '../util/format.js';
import { lazySchema } from '../util/lazySchema.js';
import { Prng, sampleSeed } from '../util/random.js';

export const augmentSettings = lazySchema((z) =>
  z
    .strictObject({
      translate: z
        .int()
        .min(0)
        .max(64)
        .default(0)
        .describe('largest random shift in pixels, each way, of both axes'),
      flip: z
        .boolean()
        .default(false)
        .describe('mirror left–right half the time (not for digits or letters)'),
      noise: z
        .number()
        .min(0)
        .default(0)
        .describe(
          'standard deviation of Gaussian noise added to every value, in raw units (0–255 for bytes)',
        ),
      seed: z
        .int()
        .min(0)
        .max(0xffffffff)
        .optional()
        .describe('seed of the augmentations (default: derived from the run seed)'),
    })
    .superRefine((s, ctx) => {
      if (s.translate === 0 && !s.flip && s.noise === 0)
        ctx.addIssue({
          code: 'custom',
          path: [],
          message: 'augment does nothing: set translate, flip or noise',
        });
    }),
);
export type AugmentSettings = z.output<typeof augmentSettings>;

export const augmentStage = defineStage<AugmentSettings>({
  type: 'augment',
  summary: 'random translation, horizontal flip and Gaussian noise, fresh for every sample of every pass',
  settings: augmentSettings,
  describeProgress: describeAugmentProgress,
  wiring: () => ({
    needs: [{ token: 'samples', hint: 'place augment after a sampler such as shuffle, and before sgd' }],
    provides: ['samples'],
  }),
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const seed = ctx.rng(settings.seed).nextUint32();
      let layout: ImageLayout | undefined;
      let samples = 0;
      return {
        next(message, out) {
          if (message.kind === 'snapshot' && samples === 0) {
            throw new RxtrainError(
              'E_CONFIG',
              `${ctx.id}: a model arrived before any sample: place augment between the sampler and sgd`,
            );
          }
          if (message.kind !== 'samples') {
            out.push(message);
            return;
          }
          layout ??= layoutOf(message, settings, ctx.id);
          out.push(augmentBlock(message, layout, settings, seed));
          samples += message.count;
          ctx.progress({ samples, epoch: message.epoch } satisfies AugmentCounters);
        },
      };
    }),
});

/** A new block of the augmented samples, holding its own data; position and index stay the block's. */
export function augmentBlock(
  block: SampleBlock,
  layout: ImageLayout,
  plan: AugmentPlan,
  seed: number,
): SampleBlock {
  const { count: n, width } = block;
  const data =
    plan.noise > 0 || block.data instanceof Float32Array
      ? new Float32Array(n * width)
      : new Uint8Array(n * width);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = sampleRow(block, i);
    labels[i] = block.labels[row]!;
    const rng = new Prng(sampleSeed(seed, block.epoch, block.index + i));
    augmentSample(block.data, row * width, data, i * width, layout, plan, rng);
  }
  const { rows: _shared, ...rest } = block;
  return { ...rest, data, labels };
}

function layoutOf(block: SampleBlock, settings: AugmentSettings, id: string): ImageLayout {
  const layout = imageLayout(block.shape);
  if (layout) return layout;
  if (settings.translate > 0 || settings.flip) {
    throw new RxtrainError(
      'E_DATA',
      `${id}: translate and flip need images of shape [H, W] or [C, H, W]; these samples have shape [${block.shape.join(', ')}]`,
    );
  }
  return { channels: 1, height: 1, width: block.width }; // noise alone needs no image shape
}

/** What augment reports with `ctx.progress`. */
export interface AugmentCounters {
  /** Samples augmented so far, and the pass of the latest. */
  samples: number;
  epoch: number;
}

/** `128,000 samples augmented (pass 3)`. */
export function describeAugmentProgress(c: Partial<AugmentCounters>): ProgressView {
  if (c.samples === undefined) return { text: '' };
  return { text: `${count(c.samples)} samples augmented (pass ${(c.epoch ?? 0) + 1})` };
}
