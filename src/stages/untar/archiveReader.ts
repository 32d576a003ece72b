/**
 * The untar stage's reader of one incoming file: it recognises gzip, tar and zip by their bytes,
 * decompresses and expands as downstream asks for data, counts what decompression produces
 * against the limits, and hands on the chosen entries as `bytes` chunks. Each layer (gunzip, the
 * tar parser, an entry's own gunzip) moves only when the one above it has drained, so memory
 * stays bounded.
 */

import { createGunzip, type Gunzip } from 'node:zlib';
import { type Header, extract as tarExtract } from 'tar-stream';
import { type Emitter, type PausedReadable, StreamPuller } from '../../flow/index.js';
import { GZIP_MAGIC, isGzip } from '../../formats/gzip.js';
import {
  describeTarError,
  type ExpansionLimits,
  expansionExceeded,
  type Inflation,
  isTarHeader,
  TAR_BLOCK_BYTES,
  unsafeEntry,
} from '../../formats/tar.js';
import { isZip } from '../../formats/zip.js';
import type { FileChunk, Message } from '../../pipeline/messages.js';
import type { StageContext } from '../../pipeline/stage.js';
import { ArchiveError, type ErrorCode } from '../../util/errors.js';
import type { UntarCounters } from '../untar.js';
import { type ZipEntryHeader, ZipExtract } from './zipExtract.js';

/** What tar-stream hands out per entry (a streamx Readable), or a zip entry's Node stream. */
type EntryStream = PausedReadable;

/** The writable side of an archive parser (tar-stream's extract, or ZipExtract). */
interface ArchiveExtract {
  write(bytes: Uint8Array): boolean;
  end(): void;
  once(event: 'drain', listener: () => void): unknown;
  on(event: string, listener: (...args: never[]) => void): unknown;
  destroy(): unknown;
}

interface EntryReader {
  name: string;
  source: string;
  puller: StreamPuller;
  gunzip?: Gunzip;
  gunzipPuller?: StreamPuller;
  gunzipMeter?: Inflation;
  gunzipBlocked: boolean;
  gunzipEnded: boolean;
  /** A zip entry's inflater, counted against the limits like a gunzip. */
  zipInflation?: Inflation;
  offset: number;
  next: () => void;
}

/** Expands one incoming file: optional gunzip, then tar extraction or plain pass-through. */
export class ArchiveReader {
  done = false;
  private outer: 'detect' | 'gzip' | 'raw' = 'detect';
  private inner: 'sniff' | 'tar' | 'zip' | 'plain' = 'sniff';
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
  private extract?: ArchiveExtract;
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
    private readonly limits: ExpansionLimits,
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
    const exceeded = expansionExceeded(meter, this.expanded, this.limits);
    if (exceeded === 'bytes') {
      this.fail(
        'E_TAR_LIMIT',
        `decompresses to more than ${maxBytes} bytes (untar.maxBytes); a decompression bomb, or raise the limit`,
      );
      return false;
    }
    if (exceeded === 'ratio') {
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
      if (this.pendingLength < GZIP_MAGIC.length && !chunk.last) return;
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
      if (this.pendingLength < TAR_BLOCK_BYTES && !last) return true;
      const head = concatBytes(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
      if (isTarHeader(head)) this.startArchive('tar');
      else if (isZip(head)) this.startArchive('zip');
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
    if (last) extract.end();
    if (!ok) this.extractBlocked = true;
    return ok;
  }

  private startArchive(kind: 'tar' | 'zip'): void {
    this.inner = kind;
    const extract: ArchiveExtract =
      kind === 'tar' ? (tarExtract() as unknown as ArchiveExtract) : new ZipExtract();
    this.extract = extract;
    extract.on('drain', () => {
      this.extractBlocked = false;
      this.out.wake();
    });
    extract.on('error', (error: Error) =>
      kind === 'tar'
        ? this.fail('E_TAR', describeTarError(error), error)
        : this.fail('E_ZIP', error.message, error),
    );
    extract.on('finish', () => {
      this.extractFinished = true;
      this.current = undefined;
      this.out.wake();
    });
    extract.on('entry', (header: Header | ZipEntryHeader, stream: EntryStream, next: () => void) =>
      this.onEntry(header, stream, next),
    );
  }

  private onEntry(header: Header | ZipEntryHeader, stream: EntryStream, next: () => void): void {
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
      ...('inflation' in header && header.inflation ? { zipInflation: header.inflation } : {}),
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
    if ((this.inner === 'tar' || this.inner === 'zip') && this.extractFinished && !this.entry) {
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
        if (entry.zipInflation && !this.inflated(entry.zipInflation, raw.byteLength)) return false;
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
      if (entry.zipInflation && !this.inflated(entry.zipInflation, chunk.byteLength)) return false;
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
    } satisfies UntarCounters);
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

/** The first bytes of a file, gathered to recognise its format (one chunk is not copied). */
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
