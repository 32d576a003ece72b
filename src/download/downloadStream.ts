/**
 * A download as a Node Readable: it reads the HTTP body only when its own reader asks for data,
 * writes every byte into the cache entry's `.part` file as it passes, and ends only after the
 * file is complete, verified and renamed into the cache. In between it survives the network:
 *
 * - connection errors, idle timeouts, 5xx and 429 are retried with backoff, and a mirror that
 *   fails for good hands over to the next, as MirrorRetry (mirrorRetry.ts) decides;
 * - a body cut short is resumed with `Range: bytes=N-` (and `If-Range`, so a changed file is sent
 *   whole); a server that answers 200 instead is read from the start and the bytes already
 *   delivered are skipped, never delivered twice;
 * - the next mirror continues at the same offset;
 * - the idle timer runs only while the reader is waiting for data, so a slow consumer holding the
 *   socket back is never mistaken for a dead server.
 *
 * At the end, the length must match what the server announced, then the configured sha256/md5
 * must match, or, without a checksum, gzip data must decompress cleanly. A file that fails is
 * deleted; when its bytes have not been handed on yet (`streaming: false`) the next mirror tries
 * from the start, otherwise the stream fails, as the reader has already seen the bad bytes.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parseRetryAfter, sleep } from '../util/backoff.js';
import { FetchError, RxtrainError } from '../util/errors.js';
import type { FileLock } from '../util/fileLock.js';
import {
  type CacheEntry,
  type CacheRecord,
  commitDownload,
  Digests,
  downloadDefect,
  type ExpectedDigests,
} from './downloadCache.js';
import {
  connectionError,
  type HttpResponse,
  headerNumber,
  httpGet,
  parseContentRange,
  strongEtag,
} from './httpClient.js';
import { detailOf, MirrorRetry, type NextAttempt, type RetryPolicy, StatusError } from './mirrorRetry.js';

/** How downloads retry and time out, and where they report; shared by every file of a stage. */
export interface DownloadPolicy extends RetryPolicy {
  /** Longest silence while waiting for response headers or body bytes, ms. */
  idleTimeoutMs: number;
  /** Wall clock, for Retry-After dates and the cache record. */
  now: () => Date;
  /** Monotonic ms, to tell a silent server from a late timer. */
  monotonic: () => number;
  warn: (code: string, message: string) => void;
}

export interface DownloadOptions extends DownloadPolicy {
  /** The file on each mirror, tried in order. */
  urls: readonly string[];
  entry: CacheEntry;
  /** Held by the caller for this entry; released when the stream ends or is destroyed. */
  lock: FileLock;
  expected: ExpectedDigests;
  /** Bytes are handed on as they arrive: a late failure cannot be retried from another mirror. */
  streaming: boolean;
  progress: (bytes: number, total: number | undefined) => void;
}

type State = 'requesting' | 'reading' | 'waiting' | 'finishing' | 'done';

export class DownloadStream extends Readable {
  /** Bytes received, written and handed on. */
  position = 0;
  /** The file's size, once a response announced it. */
  total: number | undefined;
  record: CacheRecord | undefined;

  private readonly mirrors: MirrorRetry;
  private state: State = 'requesting';
  private body: Readable | undefined;
  /** File offset of the next byte the current body will give. */
  private bodyOffset = 0;
  /** ETag or Last-Modified of the file being read, for If-Range. */
  private validator: string | undefined;
  private noRange = false;
  private wanting = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private attempt: AbortController | undefined;
  private readonly stopped = new AbortController();
  private fd: number | undefined;
  private digests = new Digests();
  private first = new Uint8Array(0);

  constructor(private readonly options: DownloadOptions) {
    super();
    this.mirrors = new MirrorRetry(options.urls, options);
    try {
      this.fd = openSync(options.entry.partPath, 'w');
    } catch (error) {
      options.lock.release();
      throw new RxtrainError(
        'E_CACHE',
        `${options.entry.partPath}: cannot write (${(error as NodeJS.ErrnoException).code})`,
        { cause: error },
      );
    }
    this.request();
  }

  /** The mirror URL that delivered the bytes (the current one while running). */
  get url(): string {
    return this.mirrors.url;
  }

  override _read(): void {
    this.wanting = true;
    this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopped.abort();
    this.closeAttempt();
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    const committed = this.state === 'done';
    if (!committed) rmSync(this.options.entry.partPath, { force: true });
    this.state = 'done';
    this.options.lock.release();
    if (!committed) {
      try {
        rmdirSync(this.options.entry.dir); // only if empty: a failed download leaves nothing
      } catch {}
    }
    callback(error);
  }

  private request(): void {
    this.state = 'requesting';
    const attempt = new AbortController();
    this.attempt = attempt;
    const headers: Record<string, string> = {};
    if (this.position > 0 && !this.noRange) {
      headers['range'] = `bytes=${this.position}-`;
      if (this.validator) headers['if-range'] = this.validator;
    }
    const url = this.url;
    httpGet(url, { headers, timeoutMs: this.options.idleTimeoutMs, signal: attempt.signal }).then(
      (response) => {
        if (attempt.signal.aborted) {
          response.body.destroy();
          return;
        }
        try {
          this.onResponse(url, response.status, response.statusText, response.headers, response.body);
        } catch (error) {
          this.attemptFailed(error);
        }
      },
      (error) => {
        if (!attempt.signal.aborted) this.attemptFailed(error);
      },
    );
  }

  private onResponse(
    url: string,
    status: number,
    statusText: string,
    headers: HttpResponse['headers'],
    body: Readable,
  ): void {
    this.body = body;
    if (status !== 200 && status !== 206) {
      const retryAfter = parseRetryAfter(headers['retry-after'], this.options.now());
      if (status === 416) this.noRange = true;
      throw new StatusError(url, status, statusText, retryAfter);
    }
    const length = headerNumber(headers['content-length']);
    const validator = strongEtag(headers.etag) ?? headers['last-modified'];
    if (status === 206) {
      const range = parseContentRange(headers['content-range']);
      if (!range || !(range.start <= this.position)) {
        // A range we did not ask for: read the whole file instead.
        this.noRange = true;
        throw new FetchError('E_FETCH', url, `unusable Content-Range "${headers['content-range'] ?? ''}"`, {
          retryable: true,
        });
      }
      const { start, total } = range;
      if (this.total !== undefined && total !== undefined && total !== this.total) {
        this.fileChanged(url, total);
        return;
      }
      this.bodyOffset = start;
      this.total = total ?? this.total;
    } else {
      if (this.position > 0 && this.total !== undefined && length !== undefined && length !== this.total) {
        this.fileChanged(url, length);
        return;
      }
      this.bodyOffset = 0;
      this.total = length;
    }
    this.validator = validator;
    this.state = 'reading';
    // Events of a body we have given up on must not touch the attempt that replaced it.
    body.on('readable', () => {
      if (this.body === body) this.pump();
    });
    body.on('end', () => {
      if (this.body === body) this.bodyEnded(url);
    });
    body.on('error', (error: NodeJS.ErrnoException) => {
      if (this.body !== body) return;
      const cause = connectionError(url, error);
      this.attemptFailed(
        new FetchError(
          'E_FETCH',
          url,
          `connection lost after ${this.position} bytes: ${detailOf(cause, url)}`,
          {
            cause: error,
            retryable: true,
          },
        ),
      );
    });
    this.pump();
  }

  /** Move body bytes to the reader while it wants them. */
  private pump(): void {
    const body = this.body;
    if (this.state !== 'reading' || !body) return;
    while (this.wanting) {
      const chunk = body.read() as Buffer | null;
      if (chunk === null) {
        this.armIdle();
        return;
      }
      this.disarmIdle();
      let bytes: Buffer = chunk;
      if (this.bodyOffset < this.position) {
        // A restarted body: skip what the reader already has.
        const skip = Math.min(bytes.byteLength, this.position - this.bodyOffset);
        this.bodyOffset += skip;
        bytes = bytes.subarray(skip);
        if (bytes.byteLength === 0) continue;
      }
      this.accept(bytes);
      this.wanting = this.push(bytes);
    }
    this.disarmIdle();
  }

  private accept(bytes: Buffer): void {
    let written = 0;
    while (written < bytes.byteLength) {
      written += writeSync(this.fd!, bytes, written, bytes.byteLength - written, this.position + written);
    }
    if (this.first.byteLength < 2)
      this.first = Buffer.concat([this.first, bytes.subarray(0, 2)]).subarray(0, 2);
    this.digests.update(bytes);
    this.bodyOffset += bytes.byteLength;
    this.position += bytes.byteLength;
    this.mirrors.madeProgress();
    this.options.progress(this.position, this.total);
  }

  private armIdle(): void {
    if (this.idleTimer) return;
    const due = this.options.monotonic() + this.options.idleTimeoutMs;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.state !== 'reading' || !this.wanting) return;
      if ((this.body?.readableLength ?? 0) > 0) {
        this.pump();
        return;
      }
      // Fired late: our own event loop was blocked, and timers run before the socket reads that
      // queued up meanwhile. Give those a turn before blaming the server.
      if (this.options.monotonic() - due > this.options.idleTimeoutMs / 2) {
        this.armIdle();
        return;
      }
      this.attemptFailed(
        new FetchError(
          'E_FETCH_TIMEOUT',
          this.url,
          `no data for ${this.options.idleTimeoutMs} ms after ${this.position} bytes (fetch.idleTimeoutMs)`,
          { retryable: true },
        ),
      );
    }, this.options.idleTimeoutMs);
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private closeAttempt(): void {
    this.disarmIdle();
    this.attempt?.abort();
    this.attempt = undefined;
    this.body?.destroy();
    this.body = undefined;
  }

  private bodyEnded(url: string): void {
    if (this.state !== 'reading') return;
    this.closeAttempt();
    if (this.total !== undefined && this.position < this.total) {
      this.attemptFailed(
        new FetchError('E_FETCH', url, `connection closed after ${this.position} of ${this.total} bytes`, {
          retryable: true,
        }),
      );
      return;
    }
    this.finish().catch((error) => this.destroy(error));
  }

  private attemptFailed(error: unknown): void {
    if (this.state === 'done' || this.state === 'waiting' || this.state === 'finishing') return;
    this.closeAttempt();
    this.follow(this.mirrors.attemptFailed(error));
  }

  private follow(next: NextAttempt): void {
    if (next.kind === 'retry') {
      this.state = 'waiting';
      sleep(next.delayMs, this.stopped.signal).then(
        () => this.request(),
        () => {},
      );
    } else if (next.kind === 'mirror') {
      // Another server: what we learnt about this one's ranges and version does not carry over.
      this.noRange = false;
      this.validator = undefined;
      this.request();
    } else {
      this.state = 'finishing'; // no more attempts
      this.destroy(next.error);
    }
  }

  /** The server replaced the file while we were reading it. */
  private fileChanged(url: string, length: number): void {
    const detail = `the file changed on the server during the download (${this.total} bytes, now ${length})`;
    if (this.options.streaming) throw new FetchError('E_FETCH', url, detail);
    this.restartFromZero();
    throw new FetchError('E_FETCH', url, `${detail}; downloading it again`, { retryable: true });
  }

  private restartFromZero(): void {
    ftruncateSync(this.fd!, 0);
    this.position = 0;
    this.bodyOffset = 0;
    this.total = undefined;
    this.validator = undefined;
    this.digests = new Digests();
    this.first = new Uint8Array(0);
  }

  /** Length checked: verify, then commit to the cache, then end the stream. */
  private async finish(): Promise<void> {
    this.state = 'finishing';
    fsyncSync(this.fd!);
    const digests = this.digests.hex();
    const { entry } = this.options;
    const defect = await downloadDefect(entry.partPath, this.first, digests, this.options.expected);
    if (this.destroyed) return;
    if (defect) {
      const failure = new FetchError(defect.code, this.url, `${defect.detail}; not cached`);
      if (this.options.streaming) {
        this.destroy(failure);
        return;
      }
      this.restartFromZero();
      this.follow(this.mirrors.mirrorFailed(failure, `${defect.detail}; not cached`));
      return;
    }
    closeSync(this.fd!);
    this.fd = undefined;
    this.record = {
      format: 1,
      url: this.url,
      size: this.position,
      ...digests,
      time: this.options.now().toISOString(),
    };
    commitDownload(entry, this.record);
    this.state = 'done';
    this.options.lock.release();
    this.push(null);
  }
}
