/**
 * Reads a zip archive front to back, as tar-stream reads a tar: a Writable that takes the
 * archive's bytes and emits `entry` (header, stream, next) for each entry in turn, the stream
 * giving the entry's (inflated) data. The next entry is parsed only once `next()` is called, and
 * a write is acknowledged only once its bytes have gone into the current entry's stream, so a
 * consumer that stops reading stops the archive: memory stays bounded.
 *
 * Entries whose sizes follow their data (flag bit 3, written by streaming zip tools) are read up
 * to the data descriptor whose signature and compressed size match where it stands. The central
 * directory is not needed and ends the reading. Encrypted entries and methods other than stored
 * and deflate are errors naming the entry.
 */
import { PassThrough, Writable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import type { Inflation } from '../../formats/tar.js';
import {
  parseZipLocalHeader,
  readU32,
  ZIP_CENTRAL,
  ZIP_DESCRIPTOR,
  ZIP_END,
  ZIP_LOCAL,
  type ZipLocalHeader,
} from '../../formats/zip.js';

/** What an `entry` event says of the entry, shaped like tar-stream's header where it matters. */
export interface ZipEntryHeader {
  name: string;
  type: 'file' | 'directory';
  /** Compressed bytes into, and bytes out of, the entry's inflater (deflated entries). */
  inflation?: Inflation;
}

/** A data descriptor with its signature: signature, crc-32, compressed size, size. */
const DESCRIPTOR_BYTES = 16;

interface CurrentEntry {
  header: ZipLocalHeader;
  /** Where the entry's bytes go: an inflater or a pass-through. */
  sink: Writable;
  /** Compressed bytes still to come, or undefined until the data descriptor is found. */
  remaining: number | undefined;
  /** Compressed bytes passed on so far. */
  written: number;
  inflation?: Inflation;
}

export class ZipExtract extends Writable {
  private buffered: Uint8Array = new Uint8Array(0);
  private state: 'header' | 'data' | 'wait' | 'descriptor' | 'done' = 'header';
  /** Archive bytes consumed, for messages. */
  private offset = 0;
  private entry?: CurrentEntry;
  private nextCalled = false;
  private pendingCallback?: (error?: Error | null) => void;
  private blocked = false;

  override _write(
    chunk: Uint8Array,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.pendingCallback = callback;
    this.pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.state === 'done') callback();
    else if (this.state === 'header' && this.buffered.length === 0 && this.offset > 0)
      callback(new Error('zip: archive is truncated (it ends before its central directory)'));
    else
      callback(
        new Error(
          `zip: archive is truncated (unexpected end of data at byte ${this.offset + this.buffered.length})`,
        ),
      );
  }

  /** Parse and pass on what the buffered bytes allow; acknowledge the write when they are used up. */
  private pump(): void {
    if (this.blocked) return;
    try {
      while (this.step()) {}
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (!this.blocked && this.pendingCallback) {
      const callback = this.pendingCallback;
      this.pendingCallback = undefined;
      callback();
    }
  }

  /** One step; false when more input is needed or the consumer has to catch up (`blocked`). */
  private step(): boolean {
    switch (this.state) {
      case 'done':
        this.offset += this.buffered.length;
        this.buffered = new Uint8Array(0);
        return false;
      case 'header':
        return this.readHeader();
      case 'data':
        return this.readData();
      case 'wait':
        if (!this.nextCalled) {
          this.blocked = true;
          return false;
        }
        this.nextCalled = false;
        this.state =
          this.entry!.header.flags & 8 && this.entry!.remaining !== undefined ? 'descriptor' : 'header';
        this.entry = undefined;
        return true;
      case 'descriptor': {
        // Sizes were in the header too: skip the descriptor, with or without its signature.
        if (this.buffered.length < DESCRIPTOR_BYTES) return false;
        this.consume(readU32(this.buffered, 0) === ZIP_DESCRIPTOR ? DESCRIPTOR_BYTES : DESCRIPTOR_BYTES - 4);
        this.state = 'header';
        return true;
      }
    }
  }

  private readHeader(): boolean {
    if (this.buffered.length < 4) return false;
    const signature = readU32(this.buffered, 0);
    if (signature === ZIP_CENTRAL || signature === ZIP_END) {
      this.state = 'done';
      return true;
    }
    if (signature !== ZIP_LOCAL)
      throw new Error(
        `zip: no entry header at byte ${this.offset} (signature 0x${signature.toString(16).padStart(8, '0')})`,
      );
    const header = parseZipLocalHeader(this.buffered);
    if (!header) return false;
    if (header.flags & 1) throw new Error(`zip: entry ${header.name} is encrypted`);
    if (header.method !== 0 && header.method !== 8)
      throw new Error(
        `zip: entry ${header.name} uses compression method ${header.method} (only stored and deflate are read)`,
      );
    if (header.method === 0 && header.compressedSize === undefined)
      throw new Error(
        `zip: stored entry ${header.name} gives its size only after its data, which cannot be streamed`,
      );
    this.consume(header.headerBytes);
    const inflation = header.method === 8 ? { in: 0, out: 0 } : undefined;
    const sink = header.method === 8 ? createInflateRaw() : new PassThrough();
    sink.on('error', (error) => this.destroy(new Error(`zip: entry ${header.name}: ${error.message}`)));
    this.entry = { header, sink, remaining: header.compressedSize, written: 0, inflation };
    this.state = 'data';
    const entryHeader: ZipEntryHeader = {
      name: header.name,
      type: header.name.endsWith('/') ? 'directory' : 'file',
      ...(inflation ? { inflation } : {}),
    };
    this.emit('entry', entryHeader, sink, () => {
      this.nextCalled = true;
      this.unblock();
    });
    return true;
  }

  private readData(): boolean {
    const entry = this.entry!;
    let take: number;
    let end = false;
    let descriptor = 0;
    if (entry.remaining !== undefined) {
      take = Math.min(entry.remaining, this.buffered.length);
      end = take === entry.remaining;
    } else {
      // The data ends where a descriptor's signature is followed by the compressed size so far.
      const b = this.buffered;
      const at = findDescriptor(b, entry.written);
      if (at >= 0) {
        take = at;
        end = true;
        descriptor = DESCRIPTOR_BYTES;
      } else take = Math.max(0, b.length - (DESCRIPTOR_BYTES - 1)); // it may straddle this chunk
    }
    if (take === 0 && !end) return false;
    const bytes = this.buffered.subarray(0, take);
    this.consume(take + descriptor);
    entry.written += take;
    if (entry.remaining !== undefined) entry.remaining -= take;
    if (entry.inflation) entry.inflation.in += take;
    const ok = take > 0 ? entry.sink.write(bytes) : true;
    if (end) {
      entry.sink.end();
      this.state = 'wait';
    }
    if (!ok) {
      this.blocked = true;
      entry.sink.once('drain', () => this.unblock());
      return false;
    }
    return true;
  }

  private unblock(): void {
    this.blocked = false;
    this.pump();
  }

  private consume(n: number): void {
    this.buffered = this.buffered.subarray(n);
    this.offset += n;
  }
}

/** Position of a data descriptor whose compressed size says the data is `written + position` long. */
function findDescriptor(b: Uint8Array, written: number): number {
  for (let p = 0; p + DESCRIPTOR_BYTES <= b.length; p++) {
    if (b[p] === 0x50 && readU32(b, p) === ZIP_DESCRIPTOR && readU32(b, p + 8) === (written + p) % 2 ** 32)
      return p;
  }
  return -1;
}
