/**
 * untar — expand archives in a stream of named byte streams.
 *
 * Each incoming file is recognised by its bytes, not its name: gzip (1f 8b) is decompressed, then
 * a tar archive (`ustar` at byte 257, or a valid v7 header checksum) or a zip archive (`PK\3\4`,
 * read front to back: untar/zipExtract.ts) is expanded into its entries; anything else passes
 * through untouched. Entries are chosen by glob; a chosen entry whose name
 * ends in `.gz` is decompressed and named without the suffix; when both `x` and `x.gz` are chosen
 * only the first is kept. Every other entry is drained, because tar-stream stops reading the
 * archive until the current entry's stream has been consumed.
 *
 * Entries are read only while downstream has demand; the archive's writes wait for the tar parser
 * and gunzip to drain, so memory stays bounded whatever the archive's size.
 *
 * Nothing is ever written to disk, and hostile archives are contained: entries whose names climb
 * out with `..` or are absolute, and symbolic or hard links, are skipped with a warning (never
 * followed); `maxEntries`, `maxBytes` and `maxRatio` stop a decompression bomb within a few
 * megabytes of crossing the line (E_TAR_LIMIT); a truncated archive fails naming the archive and
 * the entry; and a stall watchdog turns a stream that stops moving into E_STALL instead of a hang.
 *
 * @example
 *   - type: untar
 *     include: ['**\/*-ubyte', '**\/*-ubyte.gz']
 */
import picomatch from 'picomatch';
import type { z } from 'zod';
import { type Emitter, transform } from '../flow/index.js';
import { RATIO_GRACE_BYTES } from '../formats/tar.js';
import type { Message } from '../pipeline/messages.js';
import { defineStage, type ProgressView, type StageContext } from '../pipeline/stage.js';
import { count, formatBytes } from '../util/format.js';
import { lazySchema } from '../util/lazySchema.js';
import { ArchiveReader } from './untar/archiveReader.js';

// The format helpers live in formats/tar.ts; these were exported from here first.
export { isTarHeader, RATIO_GRACE_BYTES, unsafeEntry } from '../formats/tar.js';

export const untarSettings = lazySchema((z) =>
  z.strictObject({
    include: z
      .array(z.string().min(1))
      .min(1)
      .default(['**'])
      .describe('globs of archive entries to keep (matched against the full entry path)'),
    exclude: z.array(z.string().min(1)).default([]).describe('globs of archive entries to drop'),
    maxEntries: z.int().min(1).default(100_000).describe('most entries one archive may hold'),
    maxBytes: z
      .int()
      .min(1)
      .default(2 ** 30)
      .describe('most bytes decompression may produce from one input file (the archive and its .gz entries)'),
    maxRatio: z
      .number()
      .min(0)
      .default(200)
      .describe(
        `most bytes out per compressed byte in, once past ${RATIO_GRACE_BYTES / 2 ** 20} MiB out (0: no limit)`,
      ),
    stallTimeoutMs: z
      .int()
      .min(0)
      .default(600_000)
      .describe(
        'fail when, mid-archive and with demand downstream, nothing moves for this long (0: never); keep it above fetch retry pauses',
      ),
  }),
);
export type UntarSettings = z.output<typeof untarSettings>;

export const untarStage = defineStage<UntarSettings>({
  type: 'untar',
  summary: 'expand .tar, .tar.gz and .zip archives (found by magic bytes) into their chosen entries, safely',
  settings: untarSettings,
  describeProgress: describeUntarProgress,
  pure: true,
  keepsNoInput: true,
  // On plain files it is a pass-through; archives and gzip are what fetch answers for.
  worthCaching: () => false,
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const include = picomatch(settings.include, { dot: true });
      const exclude = settings.exclude.length ? picomatch(settings.exclude, { dot: true }) : () => false;
      const selected = (name: string) => include(name) && !exclude(name);
      const readers = new Map<string, ArchiveReader>();
      const counts = { entries: 0, kept: 0, bytes: 0 };
      let allDone: (() => void) | undefined;
      let out!: Emitter<Message>;
      const watchdog = new StallWatchdog(settings.stallTimeoutMs, ctx, () => {
        const reader = [...readers.values()].find((r) => !r.done);
        if (!reader || out.wanted <= 0) return false; // idle, or downstream is the slow one
        reader.stalled(settings.stallTimeoutMs);
        return true;
      });

      const finishIfIdle = () => {
        for (const [name, reader] of readers) if (reader.done) readers.delete(name);
        if (readers.size === 0) watchdog.stop();
        if (readers.size === 0 && allDone) {
          allDone();
          allDone = undefined;
        }
      };

      return {
        next(message, emitter) {
          out = emitter;
          watchdog.moved();
          if (message.kind !== 'bytes') {
            emitter.push(message);
            return;
          }
          let reader = readers.get(message.file);
          if (!reader) {
            reader = new ArchiveReader(
              message.file,
              message.source,
              emitter,
              selected,
              counts,
              settings,
              ctx,
            );
            readers.set(message.file, reader);
            watchdog.start();
          }
          const result = reader.write(message);
          finishIfIdle();
          return result;
        },
        pull(emitter) {
          out = emitter;
          for (const reader of readers.values()) {
            if (reader.pull()) {
              watchdog.moved();
              finishIfIdle();
              return true;
            }
          }
          finishIfIdle();
          return false;
        },
        complete(emitter) {
          out = emitter;
          finishIfIdle();
          if (readers.size === 0) return;
          for (const reader of readers.values()) reader.checkInputEnded();
          return new Promise<void>((resolve) => {
            allDone = resolve;
            out.wake();
          });
        },
        teardown() {
          watchdog.stop();
          for (const reader of readers.values()) reader.destroy();
          readers.clear();
        },
      };
    }),
});

/**
 * Fires when nothing has moved for `timeoutMs` while a file is being read; `onStall` decides
 * whether that silence is a stall (it is not while downstream has no demand) and reports it.
 */
class StallWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly ctx: StageContext,
    private readonly onStall: () => boolean,
  ) {}

  start(): void {
    this.last = this.ctx.clock.now();
    if (this.timeoutMs > 0 && !this.timer) this.arm(this.timeoutMs);
  }

  moved(): void {
    this.last = this.ctx.clock.now();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    const due = this.ctx.clock.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = this.ctx.clock.now();
      const quiet = now - this.last;
      // Fired late: the event loop itself was blocked, and timers run before the I/O that
      // queued up meanwhile. Look again once that I/O had its turn.
      if (now - due > this.timeoutMs / 2) this.arm(this.timeoutMs);
      else if (quiet < this.timeoutMs) this.arm(this.timeoutMs - quiet);
      else if (!this.onStall()) this.arm(this.timeoutMs);
    }, ms);
  }
}
/** What untar reports with `ctx.progress`. */
export interface UntarCounters {
  /** The entry being expanded. */
  entry: string;
  /** Entries seen in the archives, and of those the ones passed on. */
  entries: number;
  kept: number;
  /** Bytes of the entries passed on. */
  bytes: number;
}

/** `3 of 4 entries, 9.5 MB  train-images-idx3-ubyte`. */
export function describeUntarProgress(c: Partial<UntarCounters>): ProgressView {
  const entry = c.entry ? `  ${c.entry}` : '';
  return {
    text: `${count(c.kept ?? 0)} of ${count(c.entries ?? 0)} entries, ${formatBytes(c.bytes ?? 0)}${entry}`,
  };
}
