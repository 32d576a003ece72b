/**
 * decodeRecords — turn files of fixed-size binary records into labelled examples.
 *
 * Each record is `labelBytes` label bytes, then the values of one example of `shape`, bytes,
 * channel-major ([C, H, W]): CIFAR-10's binary version (1 label byte + 3×32×32 pixels), the
 * defaults. A split is a list of globs, one file each, read in the order the files arrive; each
 * file's records go out as their bytes arrive, and `split-end` follows when every file of the
 * split has ended. Files matching no split are dropped (`batches.meta.txt`, `readme.html`); other
 * messages pass through.
 *
 * Labels are checked against the class count as for decodeIdx (`classes`, `classNames`, or `auto`:
 * the largest `classesFrom` label + 1; with `auto` every example waits until that split has ended,
 * so give the count or the names to stream). Errors name the file and the byte offset: a short
 * last record, a label out of range, a split with no file.
 *
 * @example
 *   - type: decodeRecords
 *     splits:
 *       train: ['**\/data_batch_1.bin', '**\/data_batch_2.bin']
 *       test: ['**\/test_batch.bin']
 *     shape: [3, 32, 32]
 *     classNames: [airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck]
 */
import picomatch from 'picomatch';
import type { z } from 'zod';
import { type Emitter, transform } from '../flow/index.js';
import { RecordDecoder } from '../formats/records.js';
import type { Examples, FileChunk, Message } from '../pipeline/messages.js';
import { defineStage } from '../pipeline/stage.js';
import { RecordError, RxtrainError } from '../util/errors.js';
import { lazySchema } from '../util/lazySchema.js';
import { completeCounter, type DecodeIdxCounters, describeDecodeIdxProgress } from './decodeIdx.js';
import { checkClassSettings, classSettings, LabelClasses } from './decoders/labelClasses.js';

const CIFAR10_TRAIN = [1, 2, 3, 4, 5].map((i) => `**/data_batch_${i}.bin`);

export const decodeRecordsSettings = lazySchema((z) =>
  z
    .strictObject({
      splits: z
        .record(
          z.string().regex(/^[a-z][a-z0-9_-]*$/, 'split names are lower-case words'),
          z.array(z.string().min(1)).min(1),
        )
        .default({ train: CIFAR10_TRAIN, test: ['**/test_batch.bin'] })
        .describe('globs of the files of each split, one file each, in order (the defaults are CIFAR-10’s)'),
      shape: z
        .array(z.int().min(1))
        .min(1)
        .max(4)
        .default([3, 32, 32])
        .describe('shape of one example, channels first: [C, H, W] or [H, W]'),
      labelBytes: z.int().min(1).max(8).default(1).describe('label bytes before each example (CIFAR-100: 2)'),
      labelByte: z
        .int()
        .min(0)
        .max(7)
        .default(0)
        .describe('which label byte is the class (CIFAR-100: 1, fine)'),
      ...classSettings(z),
      maxPendingBytes: z
        .int()
        .min(0)
        .default(256 * 1024 * 1024)
        .describe('most example bytes held while classes: auto waits for its split'),
    })
    .superRefine((s, ctx) => {
      if (s.labelByte >= s.labelBytes)
        ctx.addIssue({
          code: 'custom',
          path: ['labelByte'],
          message: `must be below labelBytes (${s.labelBytes})`,
        });
      checkClassSettings(s, Object.keys(s.splits), ctx);
    }),
);
export type DecodeRecordsSettings = z.output<typeof decodeRecordsSettings>;

export const decodeRecordsStage = defineStage<DecodeRecordsSettings>({
  type: 'decodeRecords',
  summary: 'decode fixed-size binary records (CIFAR-10’s layout: label bytes, then channel-major pixels)',
  settings: decodeRecordsSettings,
  wiring: (settings) => ({ provides: Object.keys(settings.splits).map((split) => `split:${split}`) }),
  describeProgress: describeDecodeIdxProgress,
  pure: true,
  keepsNoInput: true,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const width = settings.shape.reduce((a, b) => a * b, 1);
      const layout = { labelBytes: settings.labelBytes, labelByte: settings.labelByte, valueBytes: width };
      const classes = new LabelClasses(settings, 'decodeRecords');
      const globs = Object.entries(settings.splits).flatMap(([split, files]) =>
        files.map((glob) => ({
          split,
          glob,
          match: picomatch(glob, { dot: true }),
          file: undefined as string | undefined,
        })),
      );
      const splits = new Map(Object.keys(settings.splits).map((name) => [name, new SplitRecords(name)]));
      const decoders = new Map<string, { decoder: RecordDecoder; split: SplitRecords } | null>();
      const seenFiles: string[] = [];
      let decoded = 0;

      const decoderOf = (chunk: FileChunk) => {
        let entry = decoders.get(chunk.file);
        if (entry !== undefined) return entry;
        seenFiles.push(chunk.file);
        const slot = globs.find((g) => g.match(chunk.file));
        if (slot?.file !== undefined) {
          throw new RxtrainError(
            'E_RECORD_MISSING',
            `decodeRecords: two files match ${slot.split} file ${slot.glob}: ${slot.file} and ${chunk.file}`,
          );
        }
        if (slot) slot.file = chunk.file;
        entry = slot
          ? { decoder: new RecordDecoder(chunk.source, layout), split: splits.get(slot.split)! }
          : null;
        decoders.set(chunk.file, entry);
        return entry;
      };

      /** Every file of the split has been read to its end. */
      const filesEnded = (split: string) =>
        globs.every(
          (g) => g.split !== split || (g.file !== undefined && decoders.get(g.file)!.decoder.ended),
        );

      /** Send what is ready, in order; then `split-end` for each split whose files have all ended. */
      const flush = (out: Emitter<Message>) => {
        if (classes.count === undefined) return;
        for (const split of splits.values()) {
          decoded += split.emit(out, classes, settings.shape, width);
          if (!split.ended && filesEnded(split.name)) {
            split.ended = true;
            out.push({ kind: 'split-end', split: split.name, count: split.count });
            ctx.progress({ [completeCounter(split.name)]: split.count } satisfies DecodeIdxCounters);
          }
        }
      };

      return {
        next(message, out) {
          if (message.kind !== 'bytes') {
            out.push(message);
            return;
          }
          const entry = decoderOf(message);
          if (!entry) return; // not a file of any split: dropped
          const { decoder, split } = entry;
          const records = decoder.push(message.bytes);
          if (records) split.add(records.labels, records.values, decoder, records.start, classes);
          if (message.last) decoder.end();
          const from = classes.waitingFor;
          if (from !== undefined && filesEnded(from)) {
            // The class count is known now: check the labels that came before it.
            const problem = classes.resolve();
            if (problem) throw new RxtrainError('E_RECORD_LABEL', `decodeRecords: ${problem}`);
            for (const s of splits.values()) s.recheck(classes);
          }
          flush(out);
          const held = [...splits.values()].reduce((n, s) => n + s.pendingBytes, 0);
          if (held > settings.maxPendingBytes) {
            throw new RxtrainError(
              'E_RECORD_MISSING',
              `${decoder.file}: ${held} bytes of examples are waiting for split ${from} to end, which fixes the class count (decodeRecords.classes: auto); give decodeRecords.classes or classNames, or raise maxPendingBytes`,
            );
          }
          ctx.progress({ records: decoded, file: message.file } satisfies DecodeIdxCounters);
        },
        complete() {
          const missing = globs.filter((g) => g.file === undefined);
          if (missing.length > 0) {
            throw new RxtrainError(
              'E_RECORD_MISSING',
              `decodeRecords: no file matches ${missing.map((g) => `${g.split} ${g.glob}`).join(', ')}; files seen: ${seenFiles.join(', ') || 'none'}`,
            );
          }
          // A file whose last chunk never came (the input ended inside it) is short.
          for (const g of globs) decoders.get(g.file!)!.decoder.end();
        },
      };
    }),
});

/** One split's examples as they are decoded; held only while the class count is unknown. */
class SplitRecords {
  count = 0;
  ended = false;
  pendingBytes = 0;
  private pending: { labels: Int32Array; values: Uint8Array; decoder: RecordDecoder; first: number }[] = [];

  constructor(readonly name: string) {}

  /** Records of one file, their labels checked as far as the class count is known. */
  add(
    labels: Int32Array,
    values: Uint8Array,
    decoder: RecordDecoder,
    first: number,
    classes: LabelClasses,
  ): void {
    const batch = { labels, values, decoder, first };
    checkLabels(batch, this.name, classes);
    this.pending.push(batch);
    this.pendingBytes += values.byteLength;
  }

  /** The class count became known: the held labels must fit it. */
  recheck(classes: LabelClasses): void {
    for (const batch of this.pending) checkLabels(batch, this.name, classes);
  }

  emit(out: Emitter<Message>, classes: LabelClasses, shape: readonly number[], width: number): number {
    let n = 0;
    for (const p of this.pending) {
      const examples: Examples = {
        kind: 'examples',
        split: this.name,
        start: this.count,
        count: p.labels.length,
        shape,
        width,
        data: p.values,
        labels: p.labels,
        classes: classes.count!,
        ...(classes.names ? { classNames: classes.names } : {}),
        source: p.decoder.file,
      };
      out.push(examples);
      this.count += p.labels.length;
      n += p.labels.length;
    }
    this.pending = [];
    this.pendingBytes = 0;
    return n;
  }
}

function checkLabels(
  batch: { labels: Int32Array; decoder: RecordDecoder; first: number },
  split: string,
  classes: LabelClasses,
): void {
  const bad = classes.check(batch.labels, split);
  if (bad < 0) return;
  const record = batch.first + bad;
  throw new RecordError(
    'E_RECORD_LABEL',
    batch.decoder.file,
    batch.decoder.labelOffset(record),
    classes.describe(batch.labels[bad]!, record),
  );
}
