/**
 * The retry policy of one download: which mirror to ask, and whether and when to ask again.
 *
 * - connection errors, idle timeouts, 5xx and 429 are retried with exponential backoff and
 *   jitter (`Retry-After` wins when it asks for longer); an attempt that delivered bytes resets
 *   the count, so a flaky but progressing server is not abandoned;
 * - a server asking to wait longer than `maxRetryAfterMs`, a permanent failure, or retries run
 *   out fail the mirror, and the next one takes over (at the same offset: the caller resumes);
 * - when every mirror has failed, the error names each one's reason.
 *
 * It decides and warns; moving bytes and sleeping are the download stream's.
 */
import { type BackoffPolicy, backoffDelay } from '../util/backoff.js';
import { type ErrorCode, FetchError, RxtrainError } from '../util/errors.js';
import type { Prng } from '../util/random.js';
import { connectionError } from './httpClient.js';

export interface RetryPolicy {
  /** Retries per mirror after the first attempt (reset whenever an attempt makes progress). */
  retries: number;
  backoff: BackoffPolicy;
  /** Longest Retry-After honoured, ms; a server asking for more fails that mirror. */
  maxRetryAfterMs: number;
  rng: Prng;
  warn: (code: string, message: string) => void;
}

/** What to do after a failed attempt. */
export type NextAttempt =
  /** Ask the same mirror again after this pause. */
  | { kind: 'retry'; delayMs: number }
  /** Ask the next mirror now (`url` is the new current one). */
  | { kind: 'mirror'; url: string }
  /** Every mirror has failed. */
  | { kind: 'fail'; error: FetchError };

export class MirrorRetry {
  private mirror = 0;
  private retry = 0;
  private progressed = false;
  private readonly failures: { url: string; detail: string; code: ErrorCode }[] = [];

  constructor(
    private readonly urls: readonly string[],
    private readonly policy: RetryPolicy,
  ) {}

  /** The mirror being asked. */
  get url(): string {
    return this.urls[this.mirror]!;
  }

  /** The current attempt delivered bytes: its failure starts the retry count afresh. */
  madeProgress(): void {
    this.progressed = true;
  }

  attemptFailed(error: unknown): NextAttempt {
    const failure = asFetchError(error, this.url);
    if (this.progressed) this.retry = 0;
    this.progressed = false;
    const { retries, maxRetryAfterMs } = this.policy;
    const retryAfter = failure instanceof StatusError ? failure.retryAfterMs : undefined;
    if (failure.retryable && this.retry < retries) {
      if (retryAfter !== undefined && retryAfter > maxRetryAfterMs) {
        return this.mirrorFailed(
          failure,
          `${detailOf(failure, this.url)}; the server asks to wait ${Math.ceil(retryAfter / 1000)} s, longer than fetch.maxRetryAfterMs`,
        );
      }
      const delayMs = Math.max(
        retryAfter ?? 0,
        backoffDelay(this.retry, this.policy.backoff, this.policy.rng),
      );
      this.retry++;
      this.policy.warn(
        'W_FETCH_RETRY',
        `${failure.message}; retry ${this.retry} of ${retries} in ${delayMs} ms`,
      );
      return { kind: 'retry', delayMs };
    }
    const attempts = this.retry + 1;
    return this.mirrorFailed(
      failure,
      failure.retryable && attempts > 1
        ? `${detailOf(failure, this.url)} (${attempts} attempts)`
        : detailOf(failure, this.url),
    );
  }

  /** This mirror is done for: go on with the next one, or fail with every mirror's reason. */
  mirrorFailed(failure: FetchError, detail: string): NextAttempt {
    this.failures.push({ url: this.url, detail, code: failure.code });
    if (this.mirror + 1 < this.urls.length) {
      this.mirror++;
      this.retry = 0;
      this.policy.warn('W_MIRROR_FAILED', `${this.failures.at(-1)!.url}: ${detail}; trying ${this.url}`);
      return { kind: 'mirror', url: this.url };
    }
    return { kind: 'fail', error: this.finalError() };
  }

  private finalError(): FetchError {
    const last = this.failures.at(-1)!;
    if (this.failures.length === 1) return new FetchError(last.code, last.url, last.detail);
    return new FetchError(
      last.code,
      this.urls[0]!,
      `every mirror failed: ${this.failures.map((f) => `${f.url}: ${f.detail}`).join('; ')}`,
    );
  }
}

/** An HTTP status other than 200/206, retryable or not, with the delay the server asked for. */
export class StatusError extends FetchError {
  constructor(
    url: string,
    status: number,
    statusText: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super('E_FETCH_STATUS', url, `HTTP ${status}${statusText ? ` ${statusText}` : ''}`, {
      status,
      retryable: status === 429 || status >= 500 || status === 416,
    });
  }
}

/** A FetchError's message without its `url: ` prefix. */
export function detailOf(error: FetchError, url: string): string {
  return error.message.startsWith(`${url}: `) ? error.message.slice(url.length + 2) : error.message;
}

function asFetchError(error: unknown, url: string): FetchError {
  if (error instanceof FetchError) return error;
  if (error instanceof RxtrainError) return new FetchError(error.code, url, error.message, { cause: error });
  return connectionError(url, error as NodeJS.ErrnoException);
}
