/**
 * untar — expand archives in a stream of named byte streams.
 *
 * Each incoming file is recognised by its bytes, not its name: gzip (1f 8b) is decompressed, then
 * a tar archive (`ustar` at byte 257, or a valid v7 header checksum) is expanded into its entries;
 * anything else passes through untouched. Entries are chosen by glob; a chosen entry whose name
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
import { createGunzip, type Gunzip } from 'node:zlib';
import picomatch from 'picomatch';
import { type Extract, type ExtractEvents, type Header, extract as tarExtract } from 'tar-stream';
import { z } from 'zod';
import { type Emitter, StreamPuller, transform } from '../flow/index.js';
import { isGzip } from '../formats/gzip.js';
import type { FileChunk, Message } from '../pipeline/messages.js';
import { defineStage, type StageContext } from '../pipeline/stage.js';
import { ArchiveError, type ErrorCode } from '../util/errors.js';

/** A small file may compress extremely well; the ratio limit applies past this much output. */
export const RATIO_GRACE_BYTES = 16 * 2 ** 20;

export const untarSettings = z.strictObject({
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
});
export type UntarSettings = z.output<typeof untarSettings>;

export const untarStage = defineStage<UntarSettings>({
  type: 'untar',
  summary: 'expand .tar and .tar.gz archives (found by magic bytes) into their chosen entries, safely',
  settings: untarSettings,
  pure: true,
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

/** A tar header block: `ustar` magic, or (old v7 archives) a checksum that adds up. */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  if (String.fromCharCode(...block.subarray(257, 262)) === 'ustar') return true;
  const stored = Number.parseInt(String.fromCharCode(...block.subarray(148, 156)).replace(/[\0 ]/g, ''), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === stored && block[0] !== 0;
}

/**
 * Why an entry must not be used, or undefined. Nothing is written to disk, but a name that climbs
 * out of the archive, an absolute path or a link says the archive was built to escape its
 * directory: it is skipped, never followed, and reported.
 */
export function unsafeEntry(
  header: Pick<Header, 'name' | 'type'> & { linkname?: string | null },
): string | undefined {
  if (header.type === 'symlink') return `a symbolic link (to ${header.linkname ?? '?'})`;
  if (header.type === 'link') return `a hard link (to ${header.linkname ?? '?'})`;
  if (/^([\\/]|[A-Za-z]:)/.test(header.name)) return 'an absolute path';
  if (header.name.split(/[\\/]/).includes('..')) return 'a path that climbs out with ".."';
  return undefined;
}

function concatBytes(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

/** What tar-stream hands out per entry (a streamx Readable). */
type EntryStream = ExtractEvents['entry'][1];

interface EntryReader {
  name: string;
  source: string;
  puller: StreamPuller;
  gunzip?: Gunzip;
  gunzipPuller?: StreamPuller;
  gunzipMeter?: Inflation;
  gunzipBlocked: boolean;
  gunzipEnded: boolean;
  offset: number;
  next: () => void;
}

/** Bytes into and out of one gunzip, for the ratio limit. */
interface Inflation {
  in: number;
  out: number;
}

/** Expands one incoming file: optional gunzip, then tar extraction or plain pass-through. */
class ArchiveReader {
  done = false;
  private outer: 'detect' | 'gzip' | 'raw' = 'detect';
  private inner: 'sniff' | 'tar' | 'plain' = 'sniff';
  private pending: Uint8Array[] = [];
  private pendingLength = 0;
  private gunzip?: Gunzip;
  private gunzipPuller?: StreamPuller;
  private readonly outerMeter: Inflation = { in: 0, out: 0 };
  /** Bytes produced by every gunzip of this file. */
  private expanded = 0;
  private entries = 0;
  private inputEnded = false;
  private decompressedEnded = false;
  private extract?: Extract;
  private extractBlocked = false;
  private extractFinished = false;
  private entry?: EntryReader;
  /** The tar entry being parsed, kept or not, for messages. */
  private current?: string;
  private plainOffset = 0;
  private readonly keptNames = new Set<string>();
  private failed = false;

  constructor(
    private readonly file: string,
    private readonly source: string,
    private readonly out: Emitter<Message>,
    private readonly selected: (name: string) => boolean,
    private readonly counts: { entries: number; kept: number; bytes: number },
    private readonly limits: Pick<UntarSettings, 'maxEntries' | 'maxBytes' | 'maxRatio'>,
    private readonly ctx: StageContext,
  ) {}

  private fail(code: ErrorCode, detail: string, cause?: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.out.fail(new ArchiveError(code, this.source, this.current, detail, { cause }));
  }

  stalled(timeoutMs: number): void {
    this.fail(
      'E_STALL',
      `no progress for ${timeoutMs} ms (untar.stallTimeoutMs) after ${this.outerMeter.in} bytes of the file; the stream is stuck`,
    );
  }

  /** Count decompressed output; false (after failing) once a limit is crossed. */
  private inflated(meter: Inflation, n: number): boolean {
    meter.out += n;
    this.expanded += n;
    const { maxBytes, maxRatio } = this.limits;
    if (this.expanded > maxBytes) {
      this.fail(
        'E_TAR_LIMIT',
        `decompresses to more than ${maxBytes} bytes (untar.maxBytes); a decompression bomb, or raise the limit`,
      );
      return false;
    }
    if (maxRatio > 0 && meter.out > RATIO_GRACE_BYTES && meter.out > maxRatio * meter.in) {
      this.fail(
        'E_TAR_LIMIT',
        `${meter.in} compressed bytes expanded to ${meter.out} (over ${maxRatio}:1, untar.maxRatio); a decompression bomb, or raise the limit`,
      );
      return false;
    }
    return true;
  }

  /** Accept one chunk of the incoming file; a promise when the layers below need to drain first. */
  write(chunk: FileChunk): void | Promise<void> {
    if (this.failed) return;
    if (this.outer === 'detect') {
      this.pending.push(chunk.bytes);
      this.pendingLength += chunk.bytes.byteLength;
      if (this.pendingLength < 2 && !chunk.last) return;
      const head = concatBytes(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
      if (isGzip(head)) {
        this.outer = 'gzip';
        this.gunzip = createGunzip();
        this.gunzip.on('error', (error) => this.fail('E_GZIP', `gzip: ${error.message}`, error));
        this.gunzipPuller = new StreamPuller(this.gunzip, this.out.wake, () => {});
      } else this.outer = 'raw';
      return this.write({ ...chunk, bytes: head });
    }
    if (chunk.last) this.inputEnded = true;
    this.outerMeter.in += chunk.bytes.byteLength;
    if (this.outer === 'gzip') {
      const gunzip = this.gunzip!;
      const ok = chunk.bytes.byteLength > 0 ? gunzip.write(chunk.bytes) : true;
      if (chunk.last) gunzip.end();
      if (!ok) return new Promise((resolve) => gunzip.once('drain', resolve));
      return;
    }
    const ok = this.accept(chunk.bytes, chunk.last);
    if (!ok && this.extract) {
      const extract = this.extract;
      return new Promise<void>((resolve) => extract.once('drain', () => resolve()));
    }
  }

  /** Decompressed (or raw) archive bytes. Returns false when the tar parser wants a pause. */
  private accept(bytes: Uint8Array, last: boolean): boolean {
    if (this.inner === 'sniff') {
      if (bytes.byteLength) {
        this.pending.push(bytes);
        this.pendingLength += bytes.byteLength;
      }
      if (this.pendingLength < 512 && !last) return true;
      const head = concatBytes(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
      if (isTarHeader(head)) this.startTar();
      else this.inner = 'plain';
      return this.accept(head, last);
    }
    if (this.inner === 'plain') {
      const name = this.outer === 'gzip' ? this.file.replace(/\.gz$/i, '') : this.file;
      const source = this.outer === 'gzip' ? `${this.source} (gunzipped)` : this.source;
      if (bytes.byteLength > 0 || last) {
        this.out.push({ kind: 'bytes', file: name, source, offset: this.plainOffset, bytes, last });
        this.plainOffset += bytes.byteLength;
      }
      if (last) this.done = true;
      return true;
    }
    const extract = this.extract!;
    let ok = true;
    if (bytes.byteLength > 0) ok = extract.write(bytes);
    if (last) (extract as unknown as { end(): void }).end();
    if (!ok) this.extractBlocked = true;
    return ok;
  }

  private startTar(): void {
    this.inner = 'tar';
    const extract = tarExtract();
    this.extract = extract;
    extract.on('drain', () => {
      this.extractBlocked = false;
      this.out.wake();
    });
    extract.on('error', (error: Error) => this.fail('E_TAR', describeTarError(error), error));
    extract.on('finish', () => {
      this.extractFinished = true;
      this.current = undefined;
      this.out.wake();
    });
    extract.on('entry', (header, stream, next) => this.onEntry(header, stream, next));
  }

  private onEntry(header: Header, stream: EntryStream, next: () => void): void {
    this.counts.entries++;
    this.current = header.name;
    if (++this.entries > this.limits.maxEntries) {
      this.fail('E_TAR_LIMIT', `more than ${this.limits.maxEntries} entries (untar.maxEntries)`);
      return;
    }
    const name = header.name;
    const unsafe = unsafeEntry(header);
    if (unsafe) {
      this.ctx.events.emit({
        type: 'warning',
        stage: this.ctx.id,
        code: 'W_TAR_UNSAFE',
        message: `${this.source}: skipping entry ${name}: ${unsafe}; archive entries are never written to disk or followed`,
      });
    }
    const isFile = !unsafe && (header.type === 'file' || header.type === 'contiguous-file');
    const gz = /\.gz$/i.test(name);
    const logical = gz ? name.slice(0, -3) : name;
    const keep = isFile && this.selected(name) && !this.keptNames.has(logical);
    if (isFile && this.selected(name) && this.keptNames.has(logical)) {
      this.ctx.events.emit({
        type: 'warning',
        stage: this.ctx.id,
        code: 'W_DUPLICATE_ENTRY',
        message: `${this.source}: skipping ${name}, already read ${logical}`,
      });
    }
    if (!keep) {
      // Drain: tar-stream will not parse the next header until this entry's data is consumed.
      stream.on('end', next);
      stream.resume();
      return;
    }
    this.keptNames.add(logical);
    this.counts.kept++;
    const entry: EntryReader = {
      name: logical,
      source: `${this.source}!/${name}`,
      puller: new StreamPuller(stream, this.out.wake, () => {}),
      gunzipBlocked: false,
      gunzipEnded: false,
      offset: 0,
      next,
    };
    if (gz) {
      const gunzip = createGunzip();
      gunzip.on('error', (error) => this.fail('E_GZIP', `gzip: ${error.message}`, error));
      gunzip.on('drain', () => {
        entry.gunzipBlocked = false;
        this.out.wake();
      });
      entry.gunzip = gunzip;
      entry.gunzipPuller = new StreamPuller(gunzip, this.out.wake, () => {});
      entry.gunzipMeter = { in: 0, out: 0 };
    }
    this.entry = entry;
    this.out.wake();
  }

  /** Move data along without input; true when something was pushed or a layer advanced. */
  pull(): boolean {
    if (this.done || this.failed) return false;
    if (this.entry && this.pullEntry(this.entry)) return true;
    if (this.outer === 'gzip' && !this.decompressedEnded && !this.extractBlocked) {
      const chunk = this.gunzipPuller!.read();
      if (chunk) {
        if (!this.inflated(this.outerMeter, chunk.byteLength)) return false;
        this.accept(chunk, false);
        return true;
      }
      if (this.gunzipPuller!.done) {
        this.decompressedEnded = true;
        this.accept(new Uint8Array(0), true);
        return true;
      }
    }
    if (this.inner === 'tar' && this.extractFinished && !this.entry) {
      this.done = true;
      return true;
    }
    return false;
  }

  private pullEntry(entry: EntryReader): boolean {
    if (entry.gunzip) {
      const out = entry.gunzipPuller!.read();
      if (out) {
        if (!this.inflated(entry.gunzipMeter!, out.byteLength)) return false;
        this.emitEntry(entry, out, false);
        return true;
      }
      if (entry.gunzipPuller!.done) {
        this.emitEntry(entry, new Uint8Array(0), true);
        return true;
      }
      if (entry.gunzipBlocked || entry.gunzipEnded) return false;
      const raw = entry.puller.read();
      if (raw) {
        entry.gunzipMeter!.in += raw.byteLength;
        if (!entry.gunzip.write(raw)) entry.gunzipBlocked = true;
        return true;
      }
      if (entry.puller.done) {
        entry.gunzipEnded = true;
        entry.gunzip.end();
        return true;
      }
      return false;
    }
    const chunk = entry.puller.read();
    if (chunk) {
      this.emitEntry(entry, chunk, false);
      return true;
    }
    if (entry.puller.done) {
      this.emitEntry(entry, new Uint8Array(0), true);
      return true;
    }
    return false;
  }

  private emitEntry(entry: EntryReader, bytes: Uint8Array, last: boolean): void {
    this.out.push({
      kind: 'bytes',
      file: entry.name,
      source: entry.source,
      offset: entry.offset,
      bytes,
      last,
    });
    entry.offset += bytes.byteLength;
    this.counts.bytes += bytes.byteLength;
    this.ctx.progress({
      entry: entry.name,
      entries: this.counts.entries,
      kept: this.counts.kept,
      bytes: this.counts.bytes,
    });
    if (last) {
      this.entry = undefined;
      entry.next();
    }
  }

  /** The input flow ended: an archive whose file never finished is truncated. */
  checkInputEnded(): void {
    if (!this.inputEnded && !this.done) this.fail('E_TAR', 'input ended before the file did');
  }

  destroy(): void {
    this.gunzip?.destroy();
    this.extract?.destroy();
    this.entry?.gunzip?.destroy();
  }
}

function describeTarError(error: Error): string {
  if (/unexpected end/i.test(error.message)) return 'archive is truncated (unexpected end of data)';
  return `corrupt tar archive: ${error.message}`;
}
