/**
 * shuffle — a seeded sampler over the training split, emitting blocks of consecutive samples.
 *
 * Modes:
 *   - `permutation`: every pass visits each training example once, in a fresh seeded order.
 *   - `with-replacement`: each sample is drawn uniformly at random (the notebook's `randint`);
 *     a pass is `population` draws.
 *   - `buffer`: a bounded window of `bufferSize` examples; each arriving example replaces a random
 *     one, which is emitted (tfjs-data's shuffle). It samples while data is still arriving and
 *     holds only the window; each pass re-reads the input.
 * The first two hold the training split in memory (as bytes) and start when the input has ended.
 *
 * `holdout` keeps a seeded random subset of the training split out of sampling and sends it on as
 * a validation split (`val` by default) for the evaluator, like PyTorch's SubsetRandomSampler.
 *
 * State is O(1): each block carries the sampler position it was drawn from (pass, cursor and the
 * generator state at the start of the pass or block), never a copy of the data. A consumer that
 * checkpoints records that position and how many of the block's samples it used; restoring it
 * here resumes the exact sequence.
 *
 * Messages of other splits, and `features`, pass through (in `buffer` mode, during the first pass
 * only). Each block carries the transform of the latest `features` message, sent before sampling.
 *
 * @example
 *   - type: shuffle
 *     mode: permutation
 *     seed: 7
 *     holdout: { size: 5000 }
 */

import { Observable } from 'rxjs/internal/Observable';
import type { z } from 'zod';
import { jsonIf } from '../pipeline/jsonRule.js';
import type { Message } from '../pipeline/messages.js';
import type { ProgressView } from '../pipeline/stage.js';
import { defineStage } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { count } from '../util/format.js';
import { built, lazySchema } from '../util/lazySchema.js';
import { bufferSampler } from './samplers/bufferSampler.js';
import { storeSampler } from './samplers/storeSampler.js';

export const shuffleSettings = lazySchema((z) =>
  z.strictObject({
    mode: z
      .enum(['permutation', 'with-replacement', 'buffer'])
      .default('permutation')
      .describe('how samples are drawn'),
    seed: z
      .int()
      .min(0)
      .max(0xffffffff)
      .optional()
      .describe('sampler seed (default: derived from the run seed)'),
    split: z.string().default('train').describe('the split to sample from'),
    // The window holds bufferSize examples: 10 million 28×28 images would be 7.8 GB.
    bufferSize: z
      .int()
      .min(1)
      .max(1_000_000)
      .default(10000)
      .describe('window size in buffer mode (at most 1,000,000)'),
    blockSize: z.int().min(1).max(65536).default(256).describe('samples per emitted block'),
    holdout: z
      .strictObject({
        size: z.int().min(1).optional().describe('examples held out'),
        fraction: z.number().gt(0).lt(1).optional().describe('fraction of the split held out'),
        split: z.string().default('val').describe('name of the held-out split'),
      })
      .superRefine((h, ctx) => {
        if ((h.size === undefined) === (h.fraction === undefined))
          ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of size or fraction' });
      })
      .meta(jsonIf({ required: ['size'] }, { not: { required: ['fraction'] } }, { required: ['fraction'] }))
      .optional()
      .describe('a validation split held out from training'),
  }),
);
export type ShuffleSettings = z.output<typeof shuffleSettings>;

/** A sampler position: where a block's first sample was drawn from. */
const samplerPosition = lazySchema((z) => {
  const nonNegative = z.int().min(0);
  const prngState = z.strictObject({ s: z.tuple([z.number(), z.number(), z.number(), z.number()]) });
  return z.discriminatedUnion('mode', [
    z.strictObject({
      mode: z.literal('permutation'),
      epoch: nonNegative,
      cursor: nonNegative,
      rng: prngState,
    }),
    z.strictObject({ mode: z.literal('with-replacement'), drawn: nonNegative, rng: prngState }),
    z.strictObject({ mode: z.literal('buffer'), epoch: nonNegative, emitted: nonNegative, rng: prngState }),
  ]);
});
export type SamplerPosition = z.output<typeof samplerPosition>;

/**
 * What a checkpoint holds for the sampler: the position stamped on the block its consumer was
 * reading and how many of that block's samples it used (the sampler itself runs ahead).
 */
export const samplerState = lazySchema((z) =>
  z.strictObject({ position: built(samplerPosition), skip: z.int().min(0) }),
);
export type SamplerRestore = z.output<typeof samplerState>;

export const shuffleStage = defineStage<ShuffleSettings, SamplerRestore>({
  type: 'shuffle',
  summary: 'seeded sampler: permutation per pass, with replacement, or a bounded buffer window',
  settings: shuffleSettings,
  describeProgress: describeShuffleProgress,
  wiring: shuffleWiring,
  state: samplerState,
  create: (settings, ctx) => (input) => (requests) =>
    new Observable<Message>((subscriber) => {
      let restored: SamplerRestore | undefined;
      ctx.state({
        stateAt: (position, used) => ({ position: position as SamplerPosition, skip: used }),
        restore: (state) => {
          if (state.position.mode !== settings.mode) {
            throw new RxtrainError(
              'E_RESUME',
              `shuffle: the checkpoint was taken in ${state.position.mode} mode, the config says ${settings.mode}`,
            );
          }
          restored = state;
        },
      });
      const sampler =
        settings.mode === 'buffer'
          ? bufferSampler(input, settings, ctx, restored)
          : storeSampler(input, settings, ctx, restored);
      return sampler(requests).subscribe(subscriber);
    }),
});

/** Samples one split, whose examples must carry features; provides sample blocks and the holdout. */
function shuffleWiring(settings: ShuffleSettings) {
  return {
    needs: [
      { token: `split:${settings.split}`, key: ['split'] },
      { token: 'features', hint: 'add a normalise stage before it' },
    ],
    provides: ['samples', ...(settings.holdout ? [`split:${settings.holdout.split}`] : [])],
  };
}

/**
 * What shuffle reports with `ctx.progress`: over the whole split (permutation, with-replacement)
 * its population once, or in buffer mode its window as it samples.
 */
export interface ShuffleCounters {
  mode?: ShuffleSettings['mode'];
  /** Examples sampled from, and held out of the split. */
  population?: number;
  heldOut?: number;
  /** Buffer mode: the pass, the window's fill, and samples emitted in the pass. */
  epoch?: number;
  window?: number;
  emitted?: number;
}

/** `permutation over 54,000 examples, 6,000 held out`, `buffer 10,000, 3,200 sampled` or "collecting". */
export function describeShuffleProgress(c: Partial<ShuffleCounters>): ProgressView {
  const idle = 'collecting';
  if (c.population !== undefined) {
    const held = c.heldOut ? `, ${count(c.heldOut)} held out` : '';
    return { text: `${c.mode} over ${count(c.population)} examples${held}`, idle };
  }
  if (c.window !== undefined)
    return { text: `buffer ${count(c.window)}, ${count(c.emitted ?? 0)} sampled`, idle };
  return { text: idle, idle };
}
