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
 * Errors name the file and the byte offset: a bad magic, an unknown dtype, a file that ends early
 * or runs long, image and label counts that disagree, a label outside `[0, classes)`.
 *
 * @example
 *   - type: decodeIdx
 *     classes: 10
 */
import picomatch from 'picomatch';
import { z } from 'zod';
import { type Emitter, transform } from '../flow/index.js';
import { IdxDecoder, idxIntegers, idxValues } from '../formats/idx.js';
import type { Examples, FileChunk, Message } from '../pipeline/messages.js';
import { defineStage, type ProgressView, type StageContext } from '../pipeline/stage.js';
import { IdxError, RxtrainError } from '../util/errors.js';
import { count } from '../util/format.js';

const splitFiles = z.strictObject({
  images: z.string().min(1).describe('glob of the images file'),
  labels: z.string().min(1).describe('glob of the labels file'),
});

export const decodeIdxSettings = z.strictObject({
  splits: z
    .record(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'split names are lower-case words'), splitFiles)
    .default({
      train: { images: '**/train-images-idx3-ubyte', labels: '**/train-labels-idx1-ubyte' },
      test: { images: '**/t10k-images-idx3-ubyte', labels: '**/t10k-labels-idx1-ubyte' },
    })
    .describe('which files hold each split (the defaults are the MNIST names)'),
  classes: z.int().min(2).max(65536).default(10).describe('labels must lie in [0, classes)'),
  maxPendingBytes: z
    .int()
    .min(0)
    .default(256 * 1024 * 1024)
    .describe('most image bytes held while waiting for their labels'),
});
export type DecodeIdxSettings = z.output<typeof decodeIdxSettings>;

export const decodeIdxStage = defineStage<DecodeIdxSettings>({
  type: 'decodeIdx',
  summary: 'decode IDX images and labels as bytes arrive and pair them into examples',
  settings: decodeIdxSettings,
  wiring: (settings) => ({ provides: Object.keys(settings.splits).map((split) => `split:${split}`) }),
  describeProgress: describeDecodeIdxProgress,
  pure: true,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const matchers = Object.entries(settings.splits).map(([split, files]) => ({
        split,
        images: picomatch(files.images, { dot: true }),
        labels: picomatch(files.labels, { dot: true }),
      }));
      const splits = new Map<string, SplitPairing>();
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
            pairing = new SplitPairing(m.split, settings, ctx);
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
          ctx.progress({ records: decoded, file: message.file } satisfies DecodeIdxCounters);
        },
        complete() {
          for (const m of matchers) {
            const pairing = splits.get(m.split);
            pairing?.checkComplete();
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

/** Pairs one split's images file with its labels file as both stream in. */
class SplitPairing {
  private images?: IdxDecoder;
  private labels?: IdxDecoder;
  private imagesSource = '';
  private labelsSource = '';
  private labelValues = new Int32Array(1024);
  private labelCount = 0;
  /** Decoded image rows not yet emitted, oldest first. */
  private pending: { start: number; count: number; data: Uint8Array | Float32Array }[] = [];
  private pendingBytes = 0;
  private emitted = 0;
  private ended = false;

  constructor(
    readonly split: string,
    private readonly settings: DecodeIdxSettings,
    private readonly ctx: StageContext,
  ) {}

  claim(role: 'images' | 'labels', chunk: FileChunk): void {
    const existing = role === 'images' ? this.images : this.labels;
    if (existing) {
      throw new RxtrainError(
        'E_IDX_MISSING',
        `decodeIdx: two files match ${this.split}.${role}: ${existing.file} and ${chunk.source}`,
      );
    }
    const decoder = new IdxDecoder(chunk.source);
    if (role === 'images') {
      this.images = decoder;
      this.imagesSource = chunk.source;
    } else {
      this.labels = decoder;
      this.labelsSource = chunk.source;
    }
  }

  /** Feed one chunk; returns the number of examples emitted. */
  feed(role: 'images' | 'labels', chunk: FileChunk, out: Emitter<Message>): number {
    const decoder = role === 'images' ? this.images! : this.labels!;
    const records = decoder.push(chunk.bytes);
    if (decoder.header) this.checkHeaders();
    if (records) {
      const h = decoder.header!;
      if (role === 'labels') this.addLabels(idxIntegers(h, records.bytes), records.start, decoder);
      else {
        const data = idxValues(h, records.bytes);
        this.pending.push({ start: records.start, count: records.count, data });
        this.pendingBytes += data.byteLength;
      }
    }
    if (chunk.last) decoder.end();
    const n = this.emitReady(out);
    if (this.pendingBytes > this.settings.maxPendingBytes) {
      throw new RxtrainError(
        'E_IDX_MISSING',
        `${this.imagesSource}: ${this.pendingBytes} bytes of ${this.split} images are waiting for their labels (${this.labelsSource || 'labels file not seen yet'}); put the labels file first or raise decodeIdx.maxPendingBytes`,
      );
    }
    return n;
  }

  private checkHeaders(): void {
    const li = this.labels?.header;
    const im = this.images?.header;
    if (li) {
      if (li.dims.length !== 1) {
        throw new IdxError(
          'E_IDX_SHAPE',
          this.labelsSource,
          3,
          `a labels file must have rank 1, this one has rank ${li.dims.length}`,
        );
      }
      if (li.dtype === 'f32' || li.dtype === 'f64') {
        throw new IdxError('E_IDX_DTYPE', this.labelsSource, 2, `labels must be integers, not ${li.dtype}`);
      }
    }
    if (li && im && li.count !== im.count) {
      throw new IdxError(
        'E_IDX_COUNT',
        this.labelsSource,
        4,
        `${this.split}: ${li.count} labels, but ${this.imagesSource} holds ${im.count} images (its byte 4)`,
      );
    }
  }

  private addLabels(values: Int32Array, start: number, decoder: IdxDecoder): void {
    const h = decoder.header!;
    const classes = this.settings.classes;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < 0 || v >= classes || !Number.isInteger(v)) {
        throw new IdxError(
          'E_IDX_LABEL',
          this.labelsSource,
          h.headerBytes + (start + i) * h.valueSize,
          `label ${v} of example ${start + i} is outside [0, ${classes}) (decodeIdx.classes)`,
        );
      }
    }
    // Grow as labels arrive, never from the header's claim.
    if (this.labelCount + values.length > this.labelValues.length) {
      let size = this.labelValues.length;
      while (size < this.labelCount + values.length) size *= 2;
      const grown = new Int32Array(size);
      grown.set(this.labelValues.subarray(0, this.labelCount));
      this.labelValues = grown;
    }
    this.labelValues.set(values, this.labelCount);
    this.labelCount += values.length;
  }

  /** Emit every image row whose label has arrived; then `split-end` once both files are done. */
  private emitReady(out: Emitter<Message>): number {
    let n = 0;
    const im = this.images?.header;
    while (this.pending.length > 0 && im) {
      const batch = this.pending[0]!;
      const ready = Math.min(batch.count, this.labelCount - batch.start);
      if (ready <= 0) break;
      const width = im.recordValues;
      const data = ready === batch.count ? batch.data : batch.data.slice(0, ready * width);
      const examples: Examples = {
        kind: 'examples',
        split: this.split,
        start: batch.start,
        count: ready,
        splitSize: im.count,
        shape: im.recordShape,
        width,
        data,
        labels: this.labelValues.slice(batch.start, batch.start + ready),
        classes: this.settings.classes,
        source: this.imagesSource,
      };
      out.push(examples);
      n += ready;
      this.emitted += ready;
      if (ready === batch.count) {
        this.pending.shift();
        this.pendingBytes -= batch.data.byteLength;
      } else {
        const rest = batch.data.subarray(ready * width);
        this.pendingBytes -= batch.data.byteLength - rest.byteLength;
        this.pending[0] = { start: batch.start + ready, count: batch.count - ready, data: rest };
      }
    }
    if (!this.ended && this.images?.complete && this.labels?.complete && this.emitted === im!.count) {
      this.ended = true;
      out.push({ kind: 'split-end', split: this.split, count: this.emitted });
      this.ctx.progress({ [completeCounter(this.split)]: this.emitted } satisfies DecodeIdxCounters);
    }
    return n;
  }

  /** At end of input: both files must have been seen, in full. */
  checkComplete(): void {
    const missing = !this.images ? 'images' : !this.labels ? 'labels' : undefined;
    if (missing) {
      const glob = this.settings.splits[this.split]![missing];
      throw new RxtrainError(
        'E_IDX_MISSING',
        `decodeIdx: split ${this.split} has no ${missing} file (nothing matched ${glob}; found ${this.images?.file ?? this.labels?.file})`,
      );
    }
    this.images!.end();
    this.labels!.end();
  }
}

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
