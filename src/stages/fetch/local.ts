/**
 * fetch's local side: files and directories (and `embedded:mnist`) read in whole blocks, several
 * files at once; whether such a source is worth the data-stage cache; and the digests a first run
 * takes of the blocks it reads anyway.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { pipeline } from 'node:stream';
import { verifyingStream } from '../../download/downloadCache.js';
import { fileDigester } from '../../download/fingerprint.js';
import {
  isRemoteSource,
  type Listings,
  type LocalFile,
  resolveSource,
  type Source,
  selectLocalFiles,
} from '../../download/sources.js';
import { concatFlows, deferFlow, type Flow, fromFileBlocks, fromReadable } from '../../flow/index.js';
import { isGzip } from '../../formats/gzip.js';
import { isTarHeader, TAR_BLOCK_BYTES } from '../../formats/tar.js';
import { isZip } from '../../formats/zip.js';
import { BATCH_BYTES, BLOCK_BYTES, type Message } from '../../pipeline/messages.js';
import type { StageContext } from '../../pipeline/stage.js';
import { FetchError, RxtrainError } from '../../util/errors.js';
import type { FetchSettings } from '../fetch.js';
import { expectedFor, fileFlow, hasChecksum } from './files.js';
import { FetchMeter } from './progress.js';

/**
 * Bytes per read of a local file read as a stream (one with a checksum, verified as it is read).
 * Node's default (64 KiB) made reading MNIST ~840 thread-pool round trips, during which the
 * pipeline idled; 256 KiB cut a cold notebook run by ~0.13 s and cost no peak memory (measured).
 */
export const LOCAL_READ_BYTES = 256 * 1024;

/**
 * A local file without a checksum is read in blocks of up to 64 MiB, each read whole, and sent on
 * as 1 MiB views of them (flow/fileBlocks.ts): the decoded records of a block stay where they were
 * read, with no copy. 64 MiB bounds what one block holds alive. The views cost nothing to make but
 * each is a message through every data stage: 1 MiB makes MNIST ~55 of them instead of ~210 at
 * 256 KiB, ~8 ms less per run (measured, medians of 7).
 */
export const LOCAL_CHUNK_BYTES = BATCH_BYTES;
const LOCAL_BLOCKS = { blockBytes: BLOCK_BYTES, chunkBytes: LOCAL_CHUNK_BYTES };

/** The most files started ahead: more would hold descriptors open without reading any sooner. */
export const MOST_READ_AHEAD = 8;

/**
 * How many files to start ahead of the one being sent: as many as every run of that many
 * consecutive files fits its first blocks in one block's worth of memory (MNIST's four files: all
 * of them), up to `MOST_READ_AHEAD`, so that their reads overlap each other and the decoding of
 * the files before them.
 */
export function localReadAhead(sizes: readonly number[], blockBytes: number): number {
  // Any file but the first may be ahead, with at most its first block.
  const firstBlocks = sizes.slice(1).map((size) => Math.min(size, blockBytes));
  let ahead = 0;
  for (let n = 1; n <= Math.min(MOST_READ_AHEAD, firstBlocks.length); n++) {
    let window = 0;
    for (let i = 0; i < firstBlocks.length; i++) {
      window += firstBlocks[i]!;
      if (i >= n) window -= firstBlocks[i - n]!;
      if (window > blockBytes) return ahead;
    }
    ahead = n;
  }
  return ahead;
}

/**
 * The stages whose run was told their source's digest is not known yet (`fingerprint` answered
 * null): they hash local files as they read them, for the data-stage cache to key its file by.
 */
const digestsWanted = new WeakSet<StageContext>();

const listed = new WeakMap<StageContext, Listings>();

/** What this run's fetch stage has listed of its local sources (download/sources.ts). */
export function listingsOf(ctx: StageContext): Listings {
  let listings = listed.get(ctx);
  if (!listings) {
    listings = new Map();
    listed.set(ctx, listings);
  }
  return listings;
}

/** Hash the local files this run reads, for the data-stage cache to key its file by. */
export function wantDigests(ctx: StageContext): void {
  digestsWanted.add(ctx);
}

/**
 * fetch's answer to `worthCaching`: no for local files stored plain — not gzip, tar or zip by their
 * first bytes (as untar tells them), and without a checksum to verify — since reading them costs
 * what reading a cache file of the same bytes would. Yes for downloads, archives, compressed
 * files, checksummed files and mirrors.
 */
export function localWorthCaching(settings: FetchSettings, ctx: StageContext): boolean {
  if (isRemoteSource(settings.url) || settings.mirrors.length > 0) return true;
  if (settings.sha256 || settings.md5) return true;
  let files: LocalFile[];
  try {
    const source = resolveSource(settings.url, ctx.baseDir);
    if (source.kind !== 'local') return true;
    files = selectLocalFiles(source.path, source.display, settings.files, listingsOf(ctx));
  } catch {
    return true; // the read will say what is wrong
  }
  return files.some((f) => packed(f.path));
}

/** Whether a file begins as gzip, zip or tar does (unreadable: say so, and let the read fail). */
function packed(path: string): boolean {
  const head = new Uint8Array(TAR_BLOCK_BYTES);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const n = readSync(fd, head, 0, head.length, 0);
    const bytes = head.subarray(0, n);
    return isGzip(bytes) || isZip(bytes) || isTarHeader(bytes);
  } catch {
    return true;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Local sources: the first of url and mirrors that exists. */
export function localFlow(settings: FetchSettings, ctx: StageContext): Flow<Message> {
  const sources = [settings.url, ...settings.mirrors];
  return deferFlow(async () => {
    const failures: string[] = [];
    for (const url of sources) {
      try {
        return openLocal(resolveSource(url, ctx.baseDir), settings, ctx);
      } catch (error) {
        if (!(error instanceof RxtrainError) || sources.length === 1) throw error;
        failures.push(error.message);
        ctx.events.emit({
          type: 'warning',
          stage: ctx.id,
          code: error.code,
          message: `mirror failed: ${error.message}`,
        });
      }
    }
    throw new FetchError('E_FETCH', sources.join(', '), `every mirror failed: ${failures.join('; ')}`);
  });
}

function openLocal(source: Source, settings: FetchSettings, ctx: StageContext): Flow<Message> {
  if (source.kind !== 'local')
    throw new RxtrainError('E_USAGE', `${source.display}: mirrors of a local url must be local`);
  const { path } = source;
  const files = selectLocalFiles(path, source.display, settings.files, listingsOf(ctx));
  const single = files.length === 1 && files[0]!.path === path;
  if (files.length === 0 && settings.files.length) {
    throw new RxtrainError('E_FETCH', `${source.display}: no file matches ${settings.files.join(', ')}`);
  }
  const meter = new FetchMeter(ctx);
  return concatFlows(
    files.map((f) => {
      const display = single ? source.display : f.path;
      const expected = expectedFor(settings, single ? undefined : f.name);
      const open = hasChecksum(expected)
        ? () =>
            pipeline(
              createReadStream(f.path, { highWaterMark: LOCAL_READ_BYTES }),
              verifyingStream(expected, (detail) => new FetchError('E_FETCH_CHECKSUM', display, detail)),
              () => {},
            )
        : undefined;
      const update = (n: number) => meter.update(f.name, n, f.size);
      const digest = !open && digestsWanted.has(ctx) ? fileDigester(f.path, ctx.cacheDir) : undefined;
      const bytes = open
        ? fromReadable(open, display)
        : fromFileBlocks(f.path, { ...LOCAL_BLOCKS, onBlock: digest?.update, onEnd: digest?.end });
      return fileFlow(f.name, display, f.size, bytes, update);
    }),
    {
      readAhead: localReadAhead(
        files.map((f) => f.size),
        LOCAL_BLOCKS.blockBytes,
      ),
    },
  );
}
