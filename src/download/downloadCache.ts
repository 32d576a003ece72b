/**
 * The download cache: one directory per download, holding the file under its own name once it is
 * complete and verified, a `.json` record of where it came from and its digests, and, while a
 * download runs, a `.part` file and a `.lock`. A file reaches its final name only by rename, after
 * its length, checksum and (for gzip data) integrity were checked, so a reader never sees a partial
 * or unverified file under that name.
 *
 *   <cacheDir>/downloads/<key>/MNIST.tar.gz        the verified file
 *   <cacheDir>/downloads/<key>/MNIST.tar.gz.json   CacheRecord
 *   <cacheDir>/downloads/<key>/MNIST.tar.gz.part   a download in progress (the lock holder's)
 *   <cacheDir>/downloads/<key>/MNIST.tar.gz.lock   held while downloading (see fileLock.ts)
 *
 * The key is derived from the configured sha256 when there is one (so every mirror shares one
 * entry), else from the first URL.
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { gzipDefect, isGzip } from '../formats/gzip.js';
import { syncDirectory, writeFileAtomic } from '../util/atomicFile.js';
import { type ErrorCode, RxtrainError } from '../util/errors.js';

/** Checksums a file must match; lower-case hex. */
export interface ExpectedDigests {
  sha256?: string;
  md5?: string;
}

/** What the cache records beside each file. */
export interface CacheRecord {
  format: 1;
  /** The URL the bytes came from. */
  url: string;
  size: number;
  sha256: string;
  md5: string;
  /** ISO time of the download. */
  time: string;
}

export interface CacheEntry {
  /** `<key>/<name>`, for messages and events. */
  key: string;
  dir: string;
  path: string;
  partPath: string;
  recordPath: string;
  lockPath: string;
}

export function cacheEntry(cacheDir: string, identity: string, name: string): CacheEntry {
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  // Only a plain file name: the name comes from a URL and must not reach outside the entry.
  const safe = name.replace(/[\\/]/g, '_').replace(/^\.+/, '') || 'download';
  const dir = join(cacheDir, 'downloads', hash);
  const path = join(dir, safe);
  return {
    key: `${hash}/${safe}`,
    dir,
    path,
    partPath: `${path}.part`,
    recordPath: `${path}.json`,
    lockPath: `${path}.lock`,
  };
}

/** The identity a download is cached under. */
export function cacheIdentity(firstUrl: string, expected: ExpectedDigests): string {
  return expected.sha256 ? `sha256:${expected.sha256}` : `url:${firstUrl}`;
}

export function ensureEntryDir(entry: CacheEntry): void {
  try {
    mkdirSync(entry.dir, { recursive: true });
  } catch (error) {
    throw new RxtrainError(
      'E_CACHE',
      `${entry.dir}: cannot create cache directory (${(error as NodeJS.ErrnoException).code})`,
      { cause: error },
    );
  }
}

/** The entry's record if its file is there, whole, and matches every expected digest. */
export function lookupCache(entry: CacheEntry, expected: ExpectedDigests): CacheRecord | undefined {
  let record: CacheRecord;
  try {
    record = JSON.parse(readFileSync(entry.recordPath, 'utf8')) as CacheRecord;
    if (statSync(entry.path).size !== record.size) return undefined;
  } catch {
    return undefined;
  }
  if (record.format !== 1 || digestMismatch(expected, record) !== undefined) return undefined;
  return record;
}

export function writeCacheRecord(entry: CacheEntry, record: CacheRecord): void {
  writeFileAtomic(entry.recordPath, `${JSON.stringify(record, null, 1)}\n`);
}

/**
 * Why a downloaded file must not be cached, or undefined when it may: a digest that does not match,
 * or, without a checksum to go by, gzip data (found by its first bytes) that does not decompress.
 */
export async function downloadDefect(
  partPath: string,
  first: Uint8Array,
  actual: { sha256: string; md5: string },
  expected: ExpectedDigests,
): Promise<{ code: ErrorCode; detail: string } | undefined> {
  const mismatch = digestMismatch(expected, actual);
  if (mismatch) return { code: 'E_FETCH_CHECKSUM', detail: mismatch };
  if (expected.sha256 || expected.md5 || !isGzip(first)) return undefined;
  const gzip = await gzipDefect(partPath);
  return gzip ? { code: 'E_GZIP', detail: `gzip data is truncated or corrupt (${gzip})` } : undefined;
}

/** Give a verified `.part` file its name, and record where it came from. */
export function commitDownload(entry: CacheEntry, record: CacheRecord): void {
  renameSync(entry.partPath, entry.path);
  writeCacheRecord(entry, record);
  syncDirectory(entry.dir);
}

export function removeCacheEntry(entry: CacheEntry): void {
  rmSync(entry.recordPath, { force: true });
  rmSync(entry.path, { force: true });
}

/** sha256 and md5 of a byte stream, computed together in one pass. */
export class Digests {
  private sha256: Hash = createHash('sha256');
  private md5: Hash = createHash('md5');

  update(bytes: Uint8Array): void {
    this.sha256.update(bytes);
    this.md5.update(bytes);
  }

  hex(): { sha256: string; md5: string } {
    return { sha256: this.sha256.digest('hex'), md5: this.md5.digest('hex') };
  }
}

/** Describe the first expected digest that `actual` does not match, or undefined if all match. */
export function digestMismatch(
  expected: ExpectedDigests,
  actual: { sha256: string; md5: string },
): string | undefined {
  for (const algorithm of ['sha256', 'md5'] as const) {
    const want = expected[algorithm];
    if (want && want !== actual[algorithm]) {
      return `${algorithm} mismatch: expected ${want}, got ${actual[algorithm]}`;
    }
  }
  return undefined;
}

/**
 * Pass a stream through unchanged while hashing it; at its end, fail with `onMismatch`'s error
 * instead of ending if the digests differ from `expected`. The error comes before the stream's
 * end, so a reader never takes a bad file for a complete one.
 */
export function verifyingStream(expected: ExpectedDigests, onMismatch: (detail: string) => Error): Transform {
  const digests = new Digests();
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digests.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      const mismatch = digestMismatch(expected, digests.hex());
      callback(mismatch ? onMismatch(mismatch) : null);
    },
  });
}
