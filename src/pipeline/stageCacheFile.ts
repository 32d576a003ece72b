/**
 * The data-stage cache's file: how messages are laid out on disk, written, checked and read back.
 *
 *   <cacheDir>/stages/<key>.rxdata
 *     "RXDATA03"                 magic and format version
 *     uint32 length, JSON        { rxtrainVersion, stages, created }, padded to 8 bytes
 *     records                    uint32 length, uint32 kind (always 1: a message), the message
 *                                packed (packed.ts), padded to 8
 *     uint32 0, uint32 0         the end
 *     key, uint32 CRC-32, "RXND" the key (64 hex digits), the CRC of everything before the key
 *
 * The key comes last because a first run may learn it only at the end (the source's digest is
 * taken from the bytes as they are read: download/fingerprint.ts); it is compared whole, so it
 * needs no CRC of its own.
 * Written, every byte goes through the CRC (util/crc32.ts) on its way to the file. Read, the file
 * is taken whole (up to `WHOLE_FILE_BYTES`; in parts read at once on the thread pool, the CRC
 * following the parts as they arrive: util/readInParts.ts), its size, magic, key, the chain of
 * record lengths from the header to the end mark, and the CRC of every byte are checked before
 * the first message is trusted, and the messages are unpacked as views of that one buffer: no
 * copy per record, and no cryptographic hash on the way (CRC-32 over 55 MB costs ~10 ms here,
 * sha256 ~110 ms, the read itself 12-160 ms). A CRC catches what befalls a file by accident — a
 * torn write, a flipped bit, a truncation — which is what this check is for; the cache directory
 * is the user's own and the key (a sha256 of the source and the settings) is what ties a file to
 * its data.
 *
 * Consecutive batches of one split's examples are written as one record of up to 64 MiB of values
 * — with no copy: runs already one after another in memory (decoded as views of a file read in one
 * block) go as one, others (a gunzip's chunks) one after another (util/packed.ts `TypedRuns`) — so
 * their values are one run of bytes in the file and a replay hands the store a view it can keep
 * whole, where it would otherwise copy them together. The replay cuts such a record back into
 * batches of about `BATCH_BYTES` (views still), so no consumer meets a batch larger than a decoder
 * would have sent it.
 */
import { closeSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ioError } from '../util/atomicFile.js';
import { crc32 } from '../util/crc32.js';
import { PackError, packParts, pad8, TypedRuns, unpack } from '../util/packed.js';
import { readInParts } from '../util/readInParts.js';
import { BATCH_BYTES, BLOCK_BYTES, type Examples, featuresMessage, type Message } from './messages.js';

/**
 * Bump when the meaning or layout of cached messages changes, so old files stop matching: the
 * format is in the key, so an old file is a miss. 2: the transform travels as a `features`
 * message. 3: a CRC-32 trailer instead of a sha256, contiguous examples as one record.
 */
export const STAGE_CACHE_FORMAT = 3;
const MAGIC = Buffer.from(`RXDATA${String(STAGE_CACHE_FORMAT).padStart(2, '0')}`);
const TRAILER = Buffer.from('RXND');
const KEY_BYTES = 64;
const TRAILER_BYTES = KEY_BYTES + 8;
const KIND_MESSAGE = 1;
const CACHEABLE = new Set(['bytes', 'examples', 'split-end', 'features']);
/**
 * Larger files are checked in pieces and replayed record by record (a record holds at most
 * `BLOCK_BYTES`, 64 MiB, of values), so that a consumer holding only a window of the data (shuffle's
 * buffer mode) is not made to hold the whole file. MNIST's file is 55 MB, CIFAR-10's ~185 MB.
 */
export const WHOLE_FILE_BYTES = 256 * 1024 * 1024;

/**
 * Appends records to a temp file in `dir`; `commit` seals it with the key and the CRC and renames
 * it into place as `<key>.rxdata`.
 */
export class CacheWriter {
  private readonly tmp: string;
  private fd = -1;
  private crc = 0;
  private bytes = 0;
  private open = true;
  /**
   * Examples held back while the next batch may continue them: their values as runs (a batch that
   * goes on where the last run ends in memory extends it), written as one array.
   */
  private pending:
    | { first: Examples; runs: Examples['data'][]; bytes: number; labels: Int32Array[]; count: number }
    | undefined;

  constructor(
    private readonly dir: string,
    header: object,
  ) {
    this.tmp = join(dir, `.rxdata.${process.pid}.${tempCount++}.tmp`);
    try {
      this.fd = openSync(this.tmp, 'w');
      const json = Buffer.from(JSON.stringify({ ...header, created: new Date().toISOString() }));
      const head = Buffer.alloc(pad8(MAGIC.byteLength + 4 + json.byteLength));
      MAGIC.copy(head, 0);
      head.writeUInt32LE(json.byteLength, MAGIC.byteLength);
      json.copy(head, MAGIC.byteLength + 4);
      this.write(head);
    } catch (error) {
      this.abort();
      throw ioError(this.tmp, error);
    }
  }

  append(message: Message): void {
    if (!CACHEABLE.has(message.kind))
      throw new PackError(`a ${message.kind} message is not data-stage output`);
    if (message.kind === 'examples' && this.continues(message)) {
      const p = this.pending!;
      const last = p.runs[p.runs.length - 1]!;
      const data = message.data;
      if (data.buffer === last.buffer && data.byteOffset === last.byteOffset + last.byteLength) {
        const ctor = last.constructor as Uint8ArrayConstructor;
        p.runs[p.runs.length - 1] = new ctor(last.buffer, last.byteOffset, last.length + data.length);
      } else p.runs.push(data);
      p.bytes += data.byteLength;
      p.labels.push(message.labels);
      p.count += message.count;
      return;
    }
    this.flush();
    if (message.kind === 'examples') {
      this.pending = {
        first: message,
        runs: [message.data],
        bytes: message.data.byteLength,
        labels: [message.labels],
        count: message.count,
      };
      return;
    }
    this.record(message);
  }

  /** Seal with `key` and rename into place; returns the file's path and size. */
  commit(key: string): { path: string; bytes: number } {
    const path = join(this.dir, `${key}.rxdata`);
    try {
      if (!/^[0-9a-f]{64}$/.test(key)) throw new PackError(`not a cache key: ${key}`);
      this.flush();
      this.write(Buffer.alloc(8));
      const trailer = Buffer.alloc(TRAILER_BYTES);
      trailer.write(key, 0, 'latin1');
      trailer.writeUInt32LE(this.crc, KEY_BYTES);
      TRAILER.copy(trailer, KEY_BYTES + 4);
      this.write(trailer, false);
      closeSync(this.fd);
      this.open = false;
      renameSync(this.tmp, path);
    } catch (error) {
      this.abort();
      throw ioError(path, error);
    }
    return { path, bytes: this.bytes };
  }

  abort(): void {
    this.pending = undefined;
    if (this.open && this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {}
      this.open = false;
    }
    rmSync(this.tmp, { force: true });
  }

  /** The batch goes on where the held-back examples end (same split, file and shape), within bounds. */
  private continues(next: Examples): boolean {
    const p = this.pending;
    if (!p || p.bytes + next.data.byteLength > BLOCK_BYTES) return false;
    const a = p.first;
    return (
      next.split === a.split &&
      next.width === a.width &&
      next.source === a.source &&
      next.classes === a.classes &&
      next.classNames === a.classNames &&
      next.splitSize === a.splitSize &&
      next.start === a.start + p.count &&
      next.shape.join() === a.shape.join() &&
      next.data.constructor === a.data.constructor
    );
  }

  private flush(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    const labels = p.labels.length === 1 ? p.labels[0]! : concatInt32(p.labels, p.count);
    const data = p.runs.length === 1 ? p.runs[0]! : (new TypedRuns(p.runs) as unknown as Examples['data']);
    this.record({ ...p.first, count: p.count, data, labels });
  }

  private record(message: Message): void {
    // Written part by part: the examples' bytes go to the file straight from their arrays, with
    // no packed copy of every batch for the garbage collector to find later.
    const parts = packParts(message);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(length, 0);
    head.writeUInt32LE(KIND_MESSAGE, 4);
    this.write(head);
    for (const part of parts) this.write(part);
    const padding = pad8(length) - length;
    if (padding) this.write(Buffer.alloc(padding));
  }

  private write(bytes: Uint8Array, hashed = true): void {
    let written = 0;
    while (written < bytes.byteLength)
      written += writeSync(this.fd, bytes, written, bytes.byteLength - written);
    if (hashed) this.crc = crc32(bytes, this.crc);
    this.bytes += bytes.byteLength;
  }
}

/** Temp files of one process get numbers of their own. */
let tempCount = 0;

function concatInt32(parts: readonly Int32Array[], count: number): Int32Array {
  const out = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A checked cache file, ready to replay: its records' offsets and a way to read each. */
export interface CacheFile {
  /** Byte offset and length of each record's packed message. */
  records: { at: number; length: number }[];
  /** The packed bytes of record `i`: a view of the file read whole, or a fresh read. */
  bytes(i: number): Uint8Array;
  close(): void;
}

/**
 * Open and check the cache file at `path` for `key`: a `CacheFile`, or why it cannot be used
 * ('absent', or what is wrong with it). Nothing in the file is trusted before every check passed.
 */
export async function openCacheFile(
  path: string,
  key: string,
  options: { wholeFileBytes?: number } = {},
): Promise<CacheFile | string> {
  const wholeFileBytes = options.wholeFileBytes ?? WHOLE_FILE_BYTES;
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return 'absent';
  }
  if (size < MAGIC.byteLength + 4 + 8 + TRAILER_BYTES) return `truncated (${size} bytes)`;
  const fd = openSync(path, 'r');
  let keep = false;
  try {
    return await checkFile();
  } catch (error) {
    return `unreadable (${(error as Error).message})`;
  } finally {
    if (!keep) closeSync(fd);
  }

  async function checkFile(): Promise<CacheFile | string> {
    const body = size - TRAILER_BYTES;
    let whole: Buffer | undefined;
    let crcOfBody = 0;
    if (size <= wholeFileBytes) {
      // Read in parts on the thread pool; the CRC follows the parts as they arrive.
      whole = Buffer.allocUnsafeSlow(size);
      await readInParts(fd, whole, 0, size, {
        onPart: (part, offset) => {
          if (offset >= body) return;
          crcOfBody = crc32(part.subarray(0, Math.min(part.byteLength, body - offset)), crcOfBody);
        },
      });
    }
    const at = (position: number, length: number) =>
      whole
        ? whole.subarray(position, position + length)
        : readAt(fd, Buffer.allocUnsafe(length), position, length);
    const head = at(0, MAGIC.byteLength + 4);
    if (!head.subarray(0, MAGIC.byteLength).equals(MAGIC))
      return 'not a data-stage cache file of this format';
    const trailer = at(size - TRAILER_BYTES, TRAILER_BYTES);
    if (!trailer.subarray(KEY_BYTES + 4).equals(TRAILER)) return 'no end mark (truncated or corrupt)';
    const storedKey = trailer.subarray(0, KEY_BYTES).toString('latin1');
    if (storedKey !== key) return `holds key ${storedKey}, expected ${key}`;
    // The CRC before anything else: past it, lengths and JSON can be read without fear of garbage.
    const crc = whole ? crcOfBody : crcOfFile(fd, body);
    if (crc !== trailer.readUInt32LE(KEY_BYTES)) return 'CRC mismatch (corrupt or truncated)';
    const jsonLength = head.readUInt32LE(MAGIC.byteLength);
    try {
      JSON.parse(at(MAGIC.byteLength + 4, jsonLength).toString('utf8'));
    } catch {
      return 'unreadable header';
    }
    const records: CacheFile['records'] = [];
    let position = pad8(MAGIC.byteLength + 4 + jsonLength);
    for (;;) {
      if (position + 8 > body) return 'records run past the end';
      const recordHead = at(position, 8);
      const length = recordHead.readUInt32LE(0);
      if (length === 0) break;
      if (recordHead.readUInt32LE(4) !== KIND_MESSAGE) return `unknown record kind at byte ${position}`;
      records.push({ at: position + 8, length });
      position += pad8(8 + length);
    }
    if (position + 8 !== body) return 'data after the end mark';
    keep = true;
    return {
      records,
      bytes: (i) => {
        const r = records[i]!;
        // A fresh buffer per record when read piecewise: typed arrays in the message are views.
        return whole
          ? whole.subarray(r.at, r.at + r.length)
          : readAt(fd, new Uint8Array(r.length), r.at, r.length);
      },
      close: () => closeSync(fd),
    };
  }
}

/** The messages of record `bytes`, as the stages sent them (examples cut back into batches). */
export function* unpackRecord(bytes: Uint8Array): Generator<Message> {
  const message = unpack(bytes) as Message;
  if (message.kind === 'features') {
    yield featuresMessage(message.transform);
    return;
  }
  if (message.kind !== 'examples') {
    yield message;
    return;
  }
  const rowBytes = Math.max(1, message.width * message.data.BYTES_PER_ELEMENT);
  const rows = Math.max(1, Math.floor(BATCH_BYTES / rowBytes));
  if (message.count <= rows) {
    yield message;
    return;
  }
  for (let from = 0; from < message.count; from += rows) {
    const n = Math.min(rows, message.count - from);
    yield {
      ...message,
      start: message.start + from,
      count: n,
      data: message.data.subarray(from * message.width, (from + n) * message.width),
      labels: message.labels.subarray(from, from + n),
    };
  }
}

function readAt<T extends Uint8Array>(fd: number, into: T, position: number, length: number): T {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, into, done, length - done, position + done);
    if (n === 0) throw new PackError(`the file ended at byte ${position + done}`);
    done += n;
  }
  return into;
}

function crcOfFile(fd: number, length: number): number {
  const chunk = Buffer.allocUnsafe(16 << 20);
  let crc = 0;
  for (let at = 0; at < length; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.byteLength, length - at), at);
    if (n === 0) break;
    crc = crc32(chunk.subarray(0, n), crc);
    at += n;
  }
  return crc;
}
