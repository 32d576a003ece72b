/**
 * decodeIdx — turn IDX byte streams into labelled examples.
 *
 * Files are assigned to splits by glob (`splits.<name>.images` / `.labels`, matched against the
 * file's path). Both are decoded as their bytes arrive; each image is paired with its label and
 * emitted in batches, in file order, as soon as both are in. Label files are small, so image rows
 * wait for labels only if the images come first (up to `maxPendingBytes`). When a split is
 * complete a `split-end` follows its last batch. Files matching no split are dropped; other
 * messages pass through.
 *
 * The class count is `classes`, or with `classes: auto` the largest label of the training split
 * + 1, fixed when that labels file has been read and before any example goes out
 * (decoders/labelClasses.ts). `transpose` swaps each image's last two axes as it is decoded:
 * EMNIST stores its images transposed relative to MNIST.
 *
 * Errors name the file and the byte offset: a bad magic, an unknown dtype, a file that ends early
 * or runs long, image and label counts that disagree, a label outside `[0, classes)`.
 *
 * @example
 *   - type: decodeIdx
 *     classes: auto
 *     classNames: [T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot]
 */
import picomatch from 'picomatch';
import type { z } from 'zod';
import { transform } from '../flow/index.js';
import type { FileChunk, Message } from '../pipeline/messages.js';
import { defineStage, type ProgressView } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { count } from '../util/format.js';
import { built, lazySchema } from '../util/lazySchema.js';
import { SplitPairing } from './decoders/idxPairing.js';
import { checkClassSettings, classSettings, LabelClasses } from './decoders/labelClasses.js';

const splitFiles = lazySchema((z) =>
  z.strictObject({
    images: z.string().min(1).describe('glob of the images file'),
    labels: z.string().min(1).describe('glob of the labels file'),
  }),
);

export const decodeIdxSettings = lazySchema((z) =>
  z
    .strictObject({
      splits: z
        .record(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'split names are lower-case words'), built(splitFiles))
        .default({
          train: { images: '**/train-images-idx3-ubyte', labels: '**/train-labels-idx1-ubyte' },
          test: { images: '**/t10k-images-idx3-ubyte', labels: '**/t10k-labels-idx1-ubyte' },
        })
        .describe('which files hold each split (the defaults are the MNIST names)'),
      ...classSettings(z),
      transpose: z
        .boolean()
        .default(false)
        .describe('swap the last two axes of each image as it is decoded (EMNIST stores them transposed)'),
      maxPendingBytes: z
        .int()
        .min(0)
        .default(256 * 1024 * 1024)
        .describe('most image bytes held while waiting for their labels (or for the class count)'),
    })
    .superRefine((s, ctx) => checkClassSettings(s, Object.keys(s.splits), ctx)),
);
export type DecodeIdxSettings = z.output<typeof decodeIdxSettings>;

export const decodeIdxStage = defineStage<DecodeIdxSettings>({
  type: 'decodeIdx',
  summary: 'decode IDX images and labels as bytes arrive and pair them into examples',
  settings: decodeIdxSettings,
  wiring: (settings) => ({ provides: Object.keys(settings.splits).map((split) => `split:${split}`) }),
  describeProgress: describeDecodeIdxProgress,
  pure: true,
  keepsNoInput: true,
  // Uncompressed fixed-size records: views of the file's blocks, a header check per file.
  worthCaching: () => false,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const matchers = Object.entries(settings.splits).map(([split, files]) => ({
        split,
        images: picomatch(files.images, { dot: true }),
        labels: picomatch(files.labels, { dot: true }),
      }));
      const splits = new Map<string, SplitPairing>();
      const classes = new LabelClasses(settings, 'decodeIdx');
      const roles = new Map<string, { pairing: SplitPairing; role: 'images' | 'labels' } | null>();
      const seenFiles: string[] = [];
      let decoded = 0;

      const roleOf = (chunk: FileChunk) => {
        let role = roles.get(chunk.file);
        if (role !== undefined) return role;
        seenFiles.push(chunk.file);
        role = null;
        for (const m of matchers) {
          const which = m.images(chunk.file) ? 'images' : m.labels(chunk.file) ? 'labels' : undefined;
          if (!which) continue;
          let pairing = splits.get(m.split);
          if (!pairing) {
            pairing = new SplitPairing(m.split, settings, classes, (n) =>
              ctx.progress({ [completeCounter(m.split)]: n } satisfies DecodeIdxCounters),
            );
            splits.set(m.split, pairing);
          }
          pairing.claim(which, chunk);
          role = { pairing, role: which };
          break;
        }
        roles.set(chunk.file, role);
        return role;
      };

      return {
        next(message, out) {
          if (message.kind !== 'bytes') {
            out.push(message);
            return;
          }
          const role = roleOf(message);
          if (!role) return; // not an IDX file of any split: dropped
          decoded += role.pairing.feed(role.role, message, out);
          const from = classes.waitingFor;
          if (from !== undefined && splits.get(from)?.labelsComplete) {
            // The class count is known now: check the labels that came before, send what waited.
            const problem = classes.resolve();
            if (problem)
              throw new RxtrainError('E_IDX_LABEL', `${splits.get(from)!.labels!.file}: ${problem}`);
            // The split that fixed the count needs none: its labels were checked on arrival, and
            // each is at most the largest of them.
            for (const [split, pairing] of splits) if (split !== from) pairing.recheckLabels();
            for (const pairing of splits.values()) decoded += pairing.emitReady(out);
          }
          ctx.progress({ records: decoded, file: message.file } satisfies DecodeIdxCounters);
        },
        complete() {
          for (const m of matchers) {
            const pairing = splits.get(m.split);
            pairing?.checkComplete();
          }
          if (splits.size > 0 && classes.waitingFor !== undefined) {
            throw new RxtrainError(
              'E_IDX_MISSING',
              `decodeIdx: classes: auto counts the labels of split ${classes.waitingFor}, but no file matched it (${settings.splits[classes.waitingFor]?.labels}); files seen: ${seenFiles.join(', ')}`,
            );
          }
          if (splits.size === 0) {
            throw new RxtrainError(
              'E_IDX_MISSING',
              `decodeIdx: no input file matches any split (${Object.entries(settings.splits)
                .map(([s, f]) => `${s}: ${f.images}, ${f.labels}`)
                .join('; ')}); files seen: ${seenFiles.join(', ') || 'none'}`,
            );
          }
        },
      };
    }),
});

/** What decodeIdx reports with `ctx.progress`. */
export interface DecodeIdxCounters {
  /** Records (images and labels) decoded so far, over every file. */
  records?: number;
  /** The file decoded last. */
  file?: string;
  /** For each split once it is complete: its examples (see `completeCounter`). */
  [complete: `${string}Examples`]: number;
}

/** The counter that says a split is complete, e.g. `testExamples`. */
export function completeCounter(split: string): `${string}Examples` {
  return `${split}Examples`;
}

/** `12,345 records decoded (complete: test 10,000)`. */
export function describeDecodeIdxProgress(c: Partial<DecodeIdxCounters>): ProgressView {
  const complete = Object.entries(c).flatMap(([key, n]) =>
    key.endsWith('Examples') && typeof n === 'number'
      ? [`${key.slice(0, -'Examples'.length)} ${count(n)}`]
      : [],
  );
  return {
    text: `${count(c.records ?? 0)} records decoded${complete.length ? ` (complete: ${complete.join(', ')})` : ''}`,
  };
}
