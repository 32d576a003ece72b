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
 * @example
 *   - type: untar
 *     include: ['**\/*-ubyte', '**\/*-ubyte.gz']
 */
import { createGunzip, type Gunzip } from 'node:zlib';
import picomatch from 'picomatch';
import { type Extract, type ExtractEvents, type Header, extract as tarExtract } from 'tar-stream';
import { z } from 'zod';
import { ArchiveError } from '../pipeline/errors.js';
import { type Emitter, StreamPuller, transform } from '../pipeline/flow.js';
import type { FileChunk, Message } from '../pipeline/messages.js';
import { defineStage, type StageContext } from '../pipeline/stage.js';

export const untarSettings = z.strictObject({
  include: z
    .array(z.string().min(1))
    .min(1)
    .default(['**'])
    .describe('globs of archive entries to keep (matched against the full entry path)'),
  exclude: z.array(z.string().min(1)).default([]).describe('globs of archive entries to drop'),
});
export type UntarSettings = z.output<typeof untarSettings>;

export const untarStage = defineStage<UntarSettings>({
  type: 'untar',
  summary: 'expand .tar and .tar.gz archives (found by magic bytes) into their chosen entries',
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

      const finishIfIdle = () => {
        for (const [name, reader] of readers) if (reader.done) readers.delete(name);
        if (readers.size === 0 && allDone) {
          allDone();
          allDone = undefined;
        }
      };

      return {
        next(message, emitter) {
          out = emitter;
          if (message.kind !== 'bytes') {
            emitter.push(message);
            return;
          }
          let reader = readers.get(message.file);
          if (!reader) {
            reader = new ArchiveReader(message.file, message.source, emitter, selected, counts, ctx);
            readers.set(message.file, reader);
          }
          const result = reader.write(message);
          finishIfIdle();
          return result;
        },
        pull(emitter) {
          out = emitter;
          for (const reader of readers.values()) {
            if (reader.pull()) {
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
          for (const reader of readers.values()) reader.destroy();
          readers.clear();
        },
      };
    }),
});

const GZIP_MAGIC = [0x1f, 0x8b];

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
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
  gunzipBlocked: boolean;
  gunzipEnded: boolean;
  offset: number;
  next: () => void;
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
  private inputEnded = false;
  private decompressedEnded = false;
  private extract?: Extract;
  private extractBlocked = false;
  private extractFinished = false;
  private entry?: EntryReader;
  private plainOffset = 0;
  private readonly keptNames = new Set<string>();
  private failed = false;

  constructor(
    private readonly file: string,
    private readonly source: string,
    private readonly out: Emitter<Message>,
    private readonly selected: (name: string) => boolean,
    private readonly counts: { entries: number; kept: number; bytes: number },
    private readonly ctx: StageContext,
  ) {}

  private fail(code: 'E_TAR' | 'E_GZIP', detail: string, cause?: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.out.fail(new ArchiveError(code, this.source, this.entry?.name, detail, { cause }));
  }

  /** Accept one chunk of the incoming file; a promise when the layers below need to drain first. */
  write(chunk: FileChunk): void | Promise<void> {
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
      this.out.wake();
    });
    extract.on('entry', (header, stream, next) => this.onEntry(header, stream, next));
  }

  private onEntry(header: Header, stream: EntryStream, next: () => void): void {
    this.counts.entries++;
    const name = header.name;
    const isFile = header.type === 'file' || header.type === 'contiguous-file';
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
      gunzip.on('error', (error) => this.fail('E_GZIP', `entry ${name}: gzip: ${error.message}`, error));
      gunzip.on('drain', () => {
        entry.gunzipBlocked = false;
        this.out.wake();
      });
      entry.gunzip = gunzip;
      entry.gunzipPuller = new StreamPuller(gunzip, this.out.wake, () => {});
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
