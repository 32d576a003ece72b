/**
 * The data-stage cache: a checkpoint between stages. The output of the data stages (a source with a
 * fingerprint, then pure stages: fetch → untar → decodeIdx → normalise) is written to disk as it
 * streams past, under a key hashed from the source bytes' digest, every cached stage's type and
 * settings, the file format and the rxtrain version. A rerun whose key matches replays that file
 * under demand and the stages never run. Where no stage's work is worth it (`worthCaching`: plain
 * local files handed on as views) the cache is bypassed, and only the key is reported.
 *
 * The file (`<cacheDir>/stages/<key>.rxdata`, stageCacheFile.ts) is complete or absent under its
 * name (written to a temp file, then renamed), and its size, structure and CRC-32 are checked
 * before its first message is replayed, so a partial or corrupt file is never used: it is removed,
 * reported, and written again. It is not fsynced (unlike checkpoints): after a crash the worst case
 * is a renamed file whose blocks never reached the disk, which the check catches, and an fsync of
 * 55 MB would hold up every first run by tens of ms.
 *
 * Messages are never changed once emitted, so recording each one as it passes is the whole job:
 * the feature transform is a `features` message like any other, and its replay is frozen again,
 * as normalise sent it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Observable } from 'rxjs/internal/Observable';
import { beforeComplete, deferFlow, type Flow, Outlet } from '../flow/index.js';
import { removeStaleTemps } from '../util/atomicFile.js';
import { VERSION } from '../util/version.js';
import type { EventBus } from './events.js';
import type { Message } from './messages.js';
import {
  type CacheFile,
  CacheWriter,
  openCacheFile,
  STAGE_CACHE_FORMAT,
  unpackRecord,
} from './stageCacheFile.js';

export { STAGE_CACHE_FORMAT } from './stageCacheFile.js';

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
  /**
   * The source's digest, or undefined when it has none (the cache is bypassed); with
   * `onlyIfKnown`, null when it is not known without reading the source.
   */
  fingerprint(onlyIfKnown: boolean): Promise<string | undefined | null>;
  /**
   * Whether a cache file would save any work (default: yes). When not — plain local files handed
   * on as views — the stages run every time and no file is written; the key is still reported.
   */
  worthCaching?(): Promise<boolean>;
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

  const writeFailed = (error: unknown) =>
    options.events.emit({
      type: 'warning',
      stage: last.id,
      code: 'W_CACHE_WRITE',
      message: `data-stage cache not written: ${(error as Error).message}`,
    });
  const writer = () => {
    mkdirSync(options.dir, { recursive: true });
    return new CacheWriter(options.dir, { rxtrainVersion: VERSION, stages: options.stages });
  };

  return deferFlow(async () => {
    // What a killed run was writing here (a cache file, the fingerprint memo) goes first, whether
    // or not this run writes anything: a bypassed source still updates the memo.
    removeStaleTemps(options.dir);
    if (options.worthCaching && !(await options.worthCaching())) {
      const reason =
        'the data stages hand on views of local files stored plain: a cache file would be a second copy, read no faster';
      const known = await options.fingerprint(true);
      if (known !== undefined && known !== null) {
        report('bypass', stageCacheKey(known, options.stages), '', { reason });
        return compute;
      }
      // Not digested yet: the source digests what it reads, and the key is said at the end, before
      // the output completes (checkpoints record it, and none is taken before the data is in).
      if (known === null)
        return beforeComplete(compute, async () => {
          const digest = await options.fingerprint(false);
          if (digest) report('bypass', stageCacheKey(digest, options.stages), '', { reason });
        });
    }
    let fingerprint = await options.fingerprint(true);
    // Not digested yet, but there are cache files that might be its: digest it now to know.
    if (fingerprint === null && holdsCacheFiles(options.dir)) fingerprint = await options.fingerprint(false);
    let opened: CacheWriter | undefined;
    if (fingerprint === null) {
      try {
        opened = writer();
      } catch {
        // Nothing can be written: learn the key now all the same (checkpoints record it).
        fingerprint = await options.fingerprint(false);
      }
    }
    if (fingerprint === undefined) {
      report('bypass', '', '', {
        reason: 'the source has no fingerprint (an HTTP source without a checksum)',
      });
      return compute;
    }
    if (fingerprint === null) {
      // A source not digested yet and an empty cache (a first run): the source is digested on
      // the way, not read twice, and the file is keyed when the output has ended; `write` says
      // the key (the run records it before training begins).
      report('miss', '', '', { reason: 'absent' });
      const key = async () => {
        const digest = await options.fingerprint(false);
        return digest ? stageCacheKey(digest, options.stages) : undefined;
      };
      const open = () => {
        const w = opened ?? writer();
        opened = undefined; // a second subscription starts a file of its own
        return w;
      };
      return teeFlow(compute, open, key, {
        written: (k, path, bytes) => report('write', k, path, { bytes }),
        failed: writeFailed,
      });
    }
    const key = stageCacheKey(fingerprint, options.stages);
    const path = join(options.dir, `${key}.rxdata`);
    const file = await openCacheFile(path, key);
    if (typeof file !== 'string') {
      report('hit', key, path, { bytes: statSync(path).size });
      return replayFlow(file, options);
    }
    const problem = file;
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
    return teeFlow(compute, writer, async () => key, {
      written: (k, written, bytes) => report('write', k, written, { bytes }),
      failed: writeFailed,
    });
  });
}

function holdsCacheFiles(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => name.endsWith('.rxdata'));
  } catch {
    return false;
  }
}

/** Replay a checked cache file, one message per unit of demand. */
function replayFlow(file: CacheFile, options: StageCacheOptions): Flow<Message> {
  return (requests) =>
    new Observable<Message>((subscriber) => {
      let record = 0;
      let batches: Iterator<Message> | undefined;
      let closed = false;
      const close = () => {
        if (!closed) file.close();
        closed = true;
      };
      let messages = 0;
      options.onReplay?.('start', 0);

      /** The next message, or undefined at the end. */
      const read = (): Message | undefined => {
        for (;;) {
          const next = batches?.next();
          if (next && !next.done) return next.value;
          if (record === file.records.length) return undefined;
          batches = unpackRecord(file.bytes(record++));
        }
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

/**
 * Pass `compute` through, appending every message to a cache file that is committed at its end
 * under the key `key()` gives then (undefined: not committed).
 */
function teeFlow(
  compute: Flow<Message>,
  open: () => CacheWriter,
  key: () => Promise<string | undefined>,
  report: { written(key: string, path: string, bytes: number): void; failed(error: unknown): void },
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
      const commit = async () => {
        const k = await key();
        if (!writer) return;
        if (k === undefined) {
          give(new Error('the source changed while it was read'));
          return;
        }
        const { path, bytes } = writer.commit(k);
        report.written(k, path, bytes);
      };
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
          commit()
            .catch(give)
            .finally(() => subscriber.complete());
        },
      });
      return () => {
        sub.unsubscribe();
        // Unsubscribed before the end (stopped, failed, or training needed no more): never commit.
        if (!done) writer?.abort();
      };
    });
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
