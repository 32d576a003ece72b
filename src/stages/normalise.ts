/**
 * normalise — define the features the model sees.
 *
 * Feature j of an example is `x[j] · scale`, optionally standardised to zero mean and unit
 * variance with statistics from the training split only (`standardise: global` uses one mean and
 * deviation for all pixels, `per-channel` one per colour channel of [C, H, W] examples — an
 * example of rank 2 is one channel — and `per-feature` one per pixel), then flattened, with a
 * constant 1 appended when `bias` is set (the notebook's Φ). Fixed `mean` and `std` skip the
 * statistics pass: numbers for `global`, or a list per channel for `per-channel`.
 *
 * The batches pass on unchanged; the transform goes out once, final, as a `features` message,
 * rather than being applied to a float copy: the kernels apply it on the fly, so 60,000 images
 * stay 47 MB of bytes instead of 188 MB of floats, and zero pixels stay skippable. A fixed scale
 * (and fixed `mean`/`std`) is sent ahead of the first batch. Statistics gathered from the data
 * are final once the statistics split has ended, and are sent just before its `split-end`;
 * samplers that need the whole split wait for that anyway, and `buffer` sampling requires fixed
 * `mean`/`std` instead.
 *
 * @example
 *   - type: normalise
 *     scale: 0.00392156862745098   # 1/255
 *     standardise: per-channel
 */
import type { z } from 'zod';
import { transform } from '../flow/index.js';
import { type Examples, type Features, featuresMessage, type Message } from '../pipeline/messages.js';
import { defineStage, type ProgressView } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { lazySchema } from '../util/lazySchema.js';

export const normaliseSettings = lazySchema((z) =>
  z
    .strictObject({
      scale: z
        .number()
        .positive()
        .default(1 / 255)
        .describe('multiplier applied to raw values (x/255 by default)'),
      standardise: z
        .enum(['none', 'global', 'per-channel', 'per-feature'])
        .default('none')
        .describe('subtract the mean and divide by the standard deviation of the training split'),
      mean: z
        .union([z.number(), z.array(z.number()).min(1)])
        .optional()
        .describe('fixed mean of scaled values, or one per channel (standardisation without a pass)'),
      std: z
        .union([z.number().positive(), z.array(z.number().positive()).min(1)])
        .optional()
        .describe('fixed standard deviation of scaled values, or one per channel'),
      statsSplit: z.string().default('train').describe('split whose statistics are used'),
      minStd: z
        .number()
        .positive()
        .default(1e-6)
        .describe('deviations below this are treated as 1 (constant pixels)'),
      bias: z.boolean().default(true).describe('append a constant 1 input'),
    })
    .superRefine((s, ctx) => {
      if ((s.mean === undefined) !== (s.std === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [s.mean === undefined ? 'mean' : 'std'],
          message: 'give mean and std together',
        });
      }
      if (s.mean !== undefined && s.standardise === 'per-feature') {
        ctx.addIssue({
          code: 'custom',
          path: ['mean'],
          message: 'fixed mean/std apply to standardise: global or per-channel',
        });
      }
      const lists = [s.mean, s.std].filter(Array.isArray);
      if (lists.length > 0 && s.standardise !== 'per-channel') {
        ctx.addIssue({
          code: 'custom',
          path: ['mean'],
          message: 'a mean and std per channel need standardise: per-channel',
        });
      }
      if (lists.length === 1 || (lists.length === 2 && lists[0]!.length !== lists[1]!.length)) {
        ctx.addIssue({
          code: 'custom',
          path: ['std'],
          message: 'give mean and std as lists of the same length (one per channel)',
        });
      }
    })
    // The first rule, said in JSON Schema for editors.
    .meta({ dependencies: { mean: ['std'], std: ['mean'] } }),
);
export type NormaliseSettings = z.output<typeof normaliseSettings>;

/** Whether the statistics come from a pass over the data (not fixed, not none). */
function statsFromData(settings: NormaliseSettings): boolean {
  return settings.standardise !== 'none' && settings.mean === undefined;
}

export const normaliseStage = defineStage<NormaliseSettings>({
  type: 'normalise',
  summary: 'scale, optionally standardise (training statistics only), flatten and add a bias input',
  settings: normaliseSettings,
  wiring: (settings) => ({
    // Statistics gathered from the data come from statsSplit; fixed mean/std or none need no split.
    needs: statsFromData(settings) ? [{ token: `split:${settings.statsSplit}`, key: ['statsSplit'] }] : [],
    provides: ['features'],
  }),
  describeProgress: describeNormaliseProgress,
  pure: true,
  keepsNoInput: true,
  // A pass over the data only when the statistics come from it.
  worthCaching: statsFromData,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const fromData = statsFromData(settings);
      const global = settings.standardise === 'global';
      const perChannel = settings.standardise === 'per-channel';
      /** Values per example, from the first batch; every later batch must match it. */
      let width: number | undefined;
      /** The first batch: its shape is every batch's. */
      let first: Examples | undefined;
      /** Channels of an example ([C, H, W]: C; otherwise 1), and values per channel. */
      let channels = 1;
      let plane = 1;
      /** How many statistics are kept: one (global), one per channel, or one per feature. */
      const groups = (w: number) => (global ? 1 : perChannel ? channels : w);
      let sent = false;
      let sum: Float64Array | undefined;
      let sumSquares: Float64Array | undefined;
      let statsCount = 0;

      /** The transform of a fixed scale (and a fixed mean and deviation, when given). */
      const fixed = (w: number): Features => {
        const scale = new Float32Array(w).fill(settings.scale);
        let shift: Float32Array | null = null;
        const { mean, std } = settings;
        if (typeof mean === 'number' && typeof std === 'number') {
          scale.fill(settings.scale / std);
          shift = new Float32Array(w).fill(-mean / std);
        } else if (mean !== undefined && std !== undefined) {
          // One mean and deviation per channel (a number stands for every channel).
          const at = (v: number | number[], c: number) => (typeof v === 'number' ? v : v[c]!);
          for (const [key, v] of [['mean', mean] as const, ['std', std] as const]) {
            if (Array.isArray(v) && v.length !== channels)
              throw new RxtrainError(
                'E_CONFIG',
                `normalise.${key} gives ${v.length} values, but the examples have ${channels} channel${channels === 1 ? '' : 's'}`,
              );
          }
          shift = new Float32Array(w);
          for (let j = 0; j < w; j++) {
            const c = (j / plane) | 0;
            scale[j] = settings.scale / at(std, c);
            shift[j] = -at(mean, c) / at(std, c);
          }
        }
        return featuresMessage({ width: w, scale, shift, bias: settings.bias });
      };

      const accumulate = (batch: Examples) => {
        const { data, count, width } = batch;
        const s = settings.scale;
        for (let r = 0; r < count; r++) {
          const o = r * width;
          for (let j = 0; j < width; j++) {
            const v = data[o + j]! * s;
            if (v === 0) continue;
            const k = global ? 0 : perChannel ? (j / plane) | 0 : j;
            sum![k] += v;
            sumSquares![k] += v * v;
          }
        }
        statsCount += count;
      };

      /** The transform standardising with the statistics gathered, once the statistics split has ended. */
      const fromStatistics = (w: number): Features => {
        const n = statsCount * (w / groups(w));
        if (n === 0)
          throw new RxtrainError('E_DATA', `normalise: split ${settings.statsSplit} has no examples`);
        const scale = new Float32Array(w);
        const shift = new Float32Array(w);
        let stdMin = Number.POSITIVE_INFINITY;
        let meanAvg = 0;
        for (let j = 0; j < w; j++) {
          const k = global ? 0 : perChannel ? (j / plane) | 0 : j;
          const mean = sum![k]! / n;
          let std = Math.sqrt(Math.max(0, sumSquares![k]! / n - mean * mean));
          if (std < settings.minStd) std = 1; // a constant feature: centre it, do not blow it up
          scale[j] = settings.scale / std;
          shift[j] = -mean / std;
          stdMin = Math.min(stdMin, std);
          meanAvg += mean / w;
        }
        ctx.progress({
          statsExamples: statsCount,
          meanAvg: Number(meanAvg.toFixed(6)),
          stdMin: Number(stdMin.toFixed(6)),
        });
        return featuresMessage({ width: w, scale, shift, bias: settings.bias });
      };

      return {
        next(message, out) {
          if (message.kind === 'examples') {
            if (width === undefined) {
              width = message.width;
              first = message;
              channels = message.shape.length >= 3 ? message.shape[0]! : 1;
              plane = width / channels;
              if (fromData) {
                sum = new Float64Array(groups(width));
                sumSquares = new Float64Array(groups(width));
              } else {
                // Final at once: sent ahead of the first batch, so every consumer has it first.
                out.push(fixed(width));
                sent = true;
              }
            } else if (message.width !== width || message.shape.join('×') !== first!.shape.join('×')) {
              // One transform, one model: every split's examples must have the same shape (a
              // 14×56 test image has as many pixels as a 28×28 one, but not the same features).
              throw new RxtrainError(
                'E_DATA',
                `${message.source}: ${message.split} examples of shape ${message.shape.join('×')}, but ${first!.split} examples (${first!.source}) are ${first!.shape.join('×')}`,
              );
            }
            if (fromData && message.split === settings.statsSplit) accumulate(message);
          } else if (
            message.kind === 'split-end' &&
            fromData &&
            !sent &&
            message.split === settings.statsSplit &&
            width !== undefined
          ) {
            // Final now: sent ahead of the split's end, which samplers wait for before sampling.
            out.push(fromStatistics(width));
            sent = true;
          }
          out.push(message);
        },
      };
    }),
});

/** What normalise reports with `ctx.progress`, once, when its training statistics are in. */
export interface NormaliseCounters {
  /** Training examples the statistics were taken over. */
  statsExamples: number;
  /** The mean feature value, averaged over features. */
  meanAvg: number;
  /** The smallest standard deviation of a feature. */
  stdMin: number;
}

/** `statsExamples=60000 meanAvg=0.130661 stdMin=0.000001`: the counters as they read. */
export function describeNormaliseProgress(c: Partial<NormaliseCounters>): ProgressView {
  if (c.statsExamples === undefined) return { text: '' };
  return { text: `statsExamples=${c.statsExamples} meanAvg=${c.meanAvg} stdMin=${c.stdMin}` };
}
