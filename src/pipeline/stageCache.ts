/**
 * The data-stage cache: a checkpoint between stages. The output of the data stages (a source with a
 * fingerprint, then pure stages: fetch → untar → decodeIdx → normalise) is written to disk as it
 * streams past, under a key hashed from the source bytes' digest, every cached stage's type and
 * settings, the file format and the rxtrain version. A rerun whose key matches replays that file
 * under demand and the stages never run.
 *
 *   <cacheDir>/stages/<key>.rxdata
 *     "RXDATA02"                 magic and format version
 *     uint32 length, JSON        { key, rxtrainVersion, stages, created }, padded to 8 bytes
 *     records                    uint32 length, uint32 kind (always 1: a message), the message
 *                                packed (packed.ts), padded to 8
 *     uint32 0, uint32 0         the end
 *     sha256                     over everything before it
 *
 * A cache file is complete or absent under its name (written to a temp file, then renamed) and its
 * sha256 is verified before its first message is replayed, so a partial or corrupt file is never
 * used: it is removed, reported, and written again. It is not fsynced (unlike checkpoints): after
 * a crash the worst case is a renamed file whose blocks never reached the disk, which the
 * verification catches, and an fsync of 55 MB would hold up every first run by tens of ms.
 *
 * Messages are never changed once emitted, so recording each one as it passes is the whole job:
 * the feature transform is a `features` message like any other, and its replay is frozen again,
 * as normalise sent it.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Observable } from 'rxjs/internal/Observable';
import { deferFlow, type Flow, Outlet } from '../flow/index.js';
import { ioError, removeStaleTemps } from '../util/atomicFile.js';
import { PackError, packParts, pad8, unpack } from '../util/packed.js';
import { VERSION } from '../util/version.js';
import type { EventBus } from './events.js';
import { featuresMessage, type Message } from './messages.js';

/**
 * Bump when the meaning of cached messages changes, so old files stop matching: the format is in
 * the key, so an old file is a miss. 2: the transform travels as a `features` message.
 */
export const STAGE_CACHE_FORMAT = 2;
const MAGIC = Buffer.from(`RXDATA${String(STAGE_CACHE_FORMAT).padStart(2, '0')}`);
const KIND_MESSAGE = 1;
const CACHEABLE = new Set(['bytes', 'examples', 'split-end', 'features']);

export interface CachedStage {
  id: string;
  type: string;
  settings: unknown;
}

/** The cache key: source digest, each cached stage's type and settings, format and version. */
export function stageCacheKey(fingerprint: string, stages: readonly CachedStage[]): string {
  const description = {
    format: STAGE_CACHE_FORMAT,
    rxtrainVersion: VERSION,
    source: fingerprint,
    stages: stages.map((s) => ({ type: s.type, settings: canonical(s.settings) })),
  };
  return createHash('sha256').update(JSON.stringify(description)).digest('hex');
}

export interface StageCacheOptions {
  /** The cache directory (`<cacheDir>/stages`). */
  dir: string;
  /** The stages the cache stands in for, in order. */
  stages: readonly CachedStage[];
  /** The source's digest, or undefined when it has none (the cache is bypassed). */
  fingerprint(): Promise<string | undefined>;
  events: EventBus;
  /** A replay begins (the stages will not run) and ends. */
  onReplay?(phase: 'start' | 'end', messages: number): void;
}

/**
 * `compute` (the data stages' output) behind the cache: on a hit, a replay of the cache file; on a
 * miss, `compute` itself with every message also appended to a new cache file.
 */
export function cachedFlow(compute: Flow<Message>, options: StageCacheOptions): Flow<Message> {
  const last = options.stages[options.stages.length - 1]!;
  const ids = options.stages.map((s) => s.id);
  const report = (action: 'hit' | 'miss' | 'write' | 'bypass', key: string, path: string, extra = {}) =>
    options.events.emit({ type: 'cache', stage: last.id, action, key, path, stages: ids, ...extra });

  return deferFlow(async () => {
    const fingerprint = await options.fingerprint();
    if (fingerprint === undefined) {
      report('bypass', '', '', {
        reason: 'the source has no fingerprint (an HTTP source without a checksum)',
      });
      return compute;
    }
    const key = stageCacheKey(fingerprint, options.stages);
    const path = join(options.dir, `${key}.rxdata`);
    const problem = await verifyCacheFile(path, key);
    if (problem === undefined) {
      report('hit', key, path, { bytes: statSync(path).size });
      return replayFlow(path, options);
    }
    if (problem !== 'absent') {
      options.events.emit({
        type: 'warning',
        stage: last.id,
        code: 'W_CACHE_CORRUPT',
        message: `${path}: ${problem}; not used, removed, and written again`,
      });
      rmSync(path, { force: true });
    }
    report('miss', key, path, { reason: problem === 'absent' ? 'absent' : 'corrupt' });
    return teeFlow(
      compute,
      () => {
        mkdirSync(options.dir, { recursive: true });
        removeStaleTemps(options.dir);
        return new CacheWriter(path, { key, rxtrainVersion: VERSION, stages: options.stages });
      },
      {
        written: (bytes) => report('write', key, path, { bytes }),
        failed: (error) =>
          options.events.emit({
            type: 'warning',
            stage: last.id,
            code: 'W_CACHE_WRITE',
            message: `data-stage cache not written: ${(error as Error).message}`,
          }),
      },
    );
  });
}

/**
 * Why the cache file at `path` cannot be used, or undefined if it can: its sha256 is checked over
 * the whole file before anything in it is trusted.
 */
export async function verifyCacheFile(path: string, key: string): Promise<string | undefined> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return 'absent';
  }
  if (size < MAGIC.byteLength + 4 + 8 + 32) return `truncated (${size} bytes)`;
  const fd = openSync(path, 'r');
  const stored = Buffer.alloc(32);
  const head = Buffer.alloc(MAGIC.byteLength + 4);
  try {
    readSync(fd, stored, 0, 32, size - 32);
    readSync(fd, head, 0, head.byteLength, 0);
  } finally {
    closeSync(fd);
  }
  if (!head.subarray(0, MAGIC.byteLength).equals(MAGIC)) return 'not a data-stage cache file of this format';
  if (!(await sha256Of(path, size - 32)).equals(stored)) return 'checksum mismatch (corrupt or truncated)';
  let storedKey: string;
  try {
    storedKey = readHeader(path).key;
  } catch {
    return 'unreadable header';
  }
  return storedKey === key ? undefined : `holds key ${storedKey}, expected ${key}`;
}

/** sha256 of the first `length` bytes of a file, read in 1 MiB pieces. */
async function sha256Of(path: string, length: number): Promise<Buffer> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  const file = await open(path, 'r');
  try {
    for (let at = 0; at < length; ) {
      const { bytesRead } = await file.read(chunk, 0, Math.min(chunk.byteLength, length - at), at);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await file.close();
  }
  return hash.digest();
}

function readHeader(path: string): { key: string; end: number } {
  const fd = openSync(path, 'r');
  try {
    const length = Buffer.alloc(4);
    readSync(fd, length, 0, 4, MAGIC.byteLength);
    const json = Buffer.alloc(length.readUInt32LE(0));
    readSync(fd, json, 0, json.byteLength, MAGIC.byteLength + 4);
    const header = JSON.parse(json.toString('utf8')) as { key: string };
    return { key: header.key, end: pad8(MAGIC.byteLength + 4 + json.byteLength) };
  } finally {
    closeSync(fd);
  }
}

/** Replay a verified cache file, reading one message per unit of demand. */
function replayFlow(path: string, options: StageCacheOptions): Flow<Message> {
  return (requests) =>
    new Observable<Message>((subscriber) => {
      let position = readHeader(path).end;
      const fd = openSync(path, 'r');
      let closed = false;
      const close = () => {
        if (!closed) closeSync(fd);
        closed = true;
      };
      const recordHead = Buffer.alloc(8);
      let messages = 0;
      options.onReplay?.('start', 0);

      /** The next message, or undefined at the end. */
      const read = (): Message | undefined => {
        readSync(fd, recordHead, 0, 8, position);
        const length = recordHead.readUInt32LE(0);
        if (length === 0) return undefined;
        // A fresh buffer per record: typed arrays in the message are views into it.
        const body = new Uint8Array(length);
        readSync(fd, body, 0, length, position + 8);
        position += pad8(8 + length);
        const message = unpack(body) as Message;
        return message.kind === 'features' ? featuresMessage(message.transform) : message;
      };

      const outlet = new Outlet<Message>(subscriber, () => {
        while (outlet.wanted > 0 && !subscriber.closed) {
          const message = read();
          if (message === undefined) {
            close();
            options.onReplay?.('end', messages);
            subscriber.complete();
            return;
          }
          messages++;
          outlet.push(message);
        }
      });
      const sub = requests.subscribe((n) => outlet.add(n));
      return () => {
        sub.unsubscribe();
        close();
      };
    });
}

/** Pass `compute` through, appending every message to a cache file that is committed at its end. */
function teeFlow(
  compute: Flow<Message>,
  open: () => CacheWriter,
  report: { written(bytes: number): void; failed(error: unknown): void },
): Flow<Message> {
  return (requests) =>
    new Observable<Message>((subscriber) => {
      let writer: CacheWriter | undefined;
      let done = false;
      const give = (error: unknown) => {
        writer?.abort();
        writer = undefined;
        report.failed(error);
      };
      try {
        writer = open();
      } catch (error) {
        give(error);
      }
      const sub = compute(requests).subscribe({
        next: (message) => {
          if (writer) {
            try {
              writer.append(message);
            } catch (error) {
              give(error);
            }
          }
          subscriber.next(message);
        },
        error: (error) => subscriber.error(error),
        complete: () => {
          done = true;
          if (writer) {
            try {
              report.written(writer.commit());
            } catch (error) {
              give(error);
            }
          }
          subscriber.complete();
        },
      });
      return () => {
        sub.unsubscribe();
        // Unsubscribed before the end (stopped, failed, or training needed no more): never commit.
        if (!done) writer?.abort();
      };
    });
}

/** Appends records to a temp file; `commit` seals it with the digest and renames it into place. */
class CacheWriter {
  private readonly tmp: string;
  private fd = -1;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private open = true;

  constructor(
    private readonly path: string,
    header: object,
  ) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.0.tmp`);
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
      throw ioError(path, error);
    }
  }

  append(message: Message): void {
    if (!CACHEABLE.has(message.kind))
      throw new PackError(`a ${message.kind} message is not data-stage output`);
    this.record(message);
  }

  /** Seal and rename into place; returns the file's size. */
  commit(): number {
    try {
      this.write(Buffer.alloc(8));
      const digest = this.hash.digest();
      this.write(digest, false);
      closeSync(this.fd);
      this.open = false;
      renameSync(this.tmp, this.path);
    } catch (error) {
      this.abort();
      throw ioError(this.path, error);
    }
    return this.bytes;
  }

  abort(): void {
    if (this.open && this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {}
      this.open = false;
    }
    rmSync(this.tmp, { force: true });
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
    if (hashed) this.hash.update(bytes);
    this.bytes += bytes.byteLength;
  }
}

/** JSON with object keys sorted, so equal settings give equal keys. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
