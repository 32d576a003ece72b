/**
 * Getting one remote file through the download cache: a hit is read from the cache; a miss takes
 * the entry's lock (so two runs download a file once: the second waits, then finds it cached),
 * then either hands the bytes on as they arrive while writing them into the cache (`tee`), or
 * downloads and verifies the whole file first and then reads it from the cache.
 */
import { createReadStream } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { RxtrainError } from '../util/errors.js';
import { acquireLock, type FileLock } from '../util/fileLock.js';
import {
  type CacheEntry,
  type CacheRecord,
  cacheEntry,
  cacheIdentity,
  type ExpectedDigests,
  ensureEntryDir,
  lookupCache,
  removeCacheEntry,
  verifyingStream,
} from './downloadCache.js';
import { type DownloadOptions, type DownloadPolicy, DownloadStream } from './downloadStream.js';

/** One file to fetch: its name downstream, where each mirror has it, what it must hash to. */
export interface RemoteFile {
  name: string;
  urls: readonly string[];
  expected: ExpectedDigests;
}

/** What a download needs from the stage running it. */
export interface DownloadEnv extends DownloadPolicy {
  cacheDir: string;
  lockStaleMs: number;
  lockPollMs: number;
  cacheEvent: (action: 'hit' | 'miss' | 'write', entry: CacheEntry) => void;
  /** Absolute progress of one file. */
  progress: (file: string, bytes: number, total: number | undefined) => void;
  /** No network: a file must already be in the cache (a report reading a run's data). */
  offline?: boolean;
}

/** A readable file ready to stream, and how to name it in messages. */
export interface OpenedFile {
  source: string;
  size: number | undefined;
  open: () => Readable;
}

/**
 * Open a remote file. With `tee`, a miss streams from the network while it fills the cache; the
 * entry's lock is held until that stream ends or `signal` aborts (the flow's teardown).
 */
export async function openRemoteFile(
  file: RemoteFile,
  env: DownloadEnv,
  signal: AbortSignal,
  tee: boolean,
): Promise<OpenedFile> {
  if (!tee) return readCached(file, ...(await ensureCached(file, env, signal)));
  const taken = await lockedMiss(file, env, signal);
  if ('record' in taken) return readCached(file, taken.entry, taken.record);
  const { entry, lock } = taken;
  signal.addEventListener('abort', () => lock.release(), { once: true });
  return {
    source: file.urls[0]!,
    size: undefined,
    open: () => {
      const stream = new DownloadStream(downloadOptions(file, env, entry, lock, true));
      stream.once('end', () => env.cacheEvent('write', entry));
      return stream;
    },
  };
}

/** Make sure the file is in the cache, downloading and verifying it if needed. */
export async function ensureCached(
  file: RemoteFile,
  env: DownloadEnv,
  signal: AbortSignal,
): Promise<[CacheEntry, CacheRecord]> {
  const taken = await lockedMiss(file, env, signal);
  if ('record' in taken) return [taken.entry, taken.record];
  const { entry, lock } = taken;
  const stream = new DownloadStream(downloadOptions(file, env, entry, lock, false));
  const stop = () => stream.destroy();
  signal.addEventListener('abort', stop, { once: true });
  try {
    stream.resume(); // the bytes go to the cache file; nobody else needs them yet
    await finished(stream);
  } finally {
    signal.removeEventListener('abort', stop);
  }
  if (signal.aborted) throw signal.reason;
  env.cacheEvent('write', entry);
  return [entry, stream.record!];
}

/** A cache hit, or the entry's lock after confirming (under it) that the file is still missing. */
async function lockedMiss(
  file: RemoteFile,
  env: DownloadEnv,
  signal: AbortSignal,
): Promise<{ entry: CacheEntry; record: CacheRecord } | { entry: CacheEntry; lock: FileLock }> {
  const entry = cacheEntry(env.cacheDir, cacheIdentity(file.urls[0]!, file.expected), file.name);
  const hit = () => {
    const record = lookupCache(entry, file.expected);
    if (record) env.cacheEvent('hit', entry);
    return record;
  };
  let record = hit();
  if (record) return { entry, record };
  if (env.offline) {
    throw new RxtrainError(
      'E_OFFLINE',
      `${file.urls[0]}: not in the download cache (${env.cacheDir}), and this command does not use the network`,
    );
  }
  ensureEntryDir(entry);
  const lock = await acquireLock(entry.lockPath, {
    staleMs: env.lockStaleMs,
    pollMs: env.lockPollMs,
    signal,
    onWait: (holder) =>
      env.warn(
        'W_FETCH_WAIT',
        `${file.urls[0]}: ${holder ? `process ${holder.pid} on ${holder.host}` : 'another process'} is downloading it; waiting for it to finish`,
      ),
  });
  // Whoever held the lock may have just committed the file.
  record = hit();
  if (record) {
    lock.release();
    return { entry, record };
  }
  env.cacheEvent('miss', entry);
  return { entry, lock };
}

function downloadOptions(
  file: RemoteFile,
  env: DownloadEnv,
  entry: CacheEntry,
  lock: FileLock,
  streaming: boolean,
): DownloadOptions {
  return {
    ...env,
    urls: file.urls,
    entry,
    lock,
    expected: file.expected,
    streaming,
    progress: (bytes, total) => env.progress(file.name, bytes, total),
  };
}

/**
 * Read a committed cache entry, checking on the way that it still hashes to its record (a disk
 * can rot): a corrupt entry fails before the stream ends, and is removed.
 */
function readCached(file: RemoteFile, entry: CacheEntry, record: CacheRecord): OpenedFile {
  return {
    source: file.urls[0]!,
    size: record.size,
    open: () =>
      pipeline(
        createReadStream(entry.path),
        verifyingStream({ sha256: record.sha256 }, (detail) => {
          removeCacheEntry(entry);
          return new RxtrainError(
            'E_CACHE',
            `${entry.path}: the cached copy of ${record.url} is corrupt (${detail}); removed it, run again to download it afresh`,
          );
        }),
        () => {},
      ),
  };
}
