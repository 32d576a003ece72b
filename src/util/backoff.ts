/**
 * When to try a failed request again: exponential backoff with jitter drawn from a seeded
 * generator (never Math.random, so a run's retry schedule is reproducible), and the server's
 * `Retry-After`, which wins when it asks for longer.
 */
import type { Prng } from './random.js';

export interface BackoffPolicy {
  /** Delay before the first retry, ms; each later retry doubles it. */
  baseMs: number;
  /** No computed delay exceeds this, ms. */
  maxMs: number;
}

/**
 * The delay before retry number `retry` (0-based): "equal jitter", half of the exponential delay
 * fixed and half uniform, so retries from many clients spread out but never collapse to zero.
 */
export function backoffDelay(retry: number, policy: BackoffPolicy, rng: Prng): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(retry, 30));
  return Math.round(exponential / 2 + rng.nextFloat() * (exponential / 2));
}

/**
 * A `Retry-After` header as milliseconds from `now`: either delay-seconds or an HTTP date
 * (RFC 9110 §10.2.3). Undefined when absent or unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | undefined | null, now: Date): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

/** Wait `ms`, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
