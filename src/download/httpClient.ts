/**
 * One HTTP GET through node-fetch, resolved when the response headers arrive. The body is handed
 * back unread as a Node Readable, which the caller reads in paused mode only as fast as it can use
 * it: node-fetch pipes the socket into that stream, so once its small buffer is full the socket is
 * paused and TCP's window stops the sender. Redirects are followed; the body is never decoded
 * (`compress: false`, `Accept-Encoding: identity`), so byte counts, `Range` offsets and checksums
 * all refer to the file itself.
 *
 * Failures become `FetchError`s naming the URL, marked retryable when trying again may help.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { deferredTrust } from '../util/caCertificates.js';
import { FetchError } from '../util/errors.js';
import { VERSION } from '../util/version.js';

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Response headers, names in lower case. */
  headers: Record<string, string | undefined>;
  /** The URL that answered, after redirects. */
  url: string;
  /** Unread. Destroy it if you do not read it to the end. */
  body: Readable;
}

export interface HttpGetOptions {
  headers?: Record<string, string>;
  /** Most ms to wait for the response headers (the connection included). */
  timeoutMs: number;
  signal?: AbortSignal;
  maxRedirects?: number;
}

// A fresh connection per request: a download is few, long requests, and no idle socket should
// outlive the run.
const httpAgent = new HttpAgent({ keepAlive: false });
let httpsAgent: HttpsAgent | undefined;
/** Made on the first https request: with NODE_EXTRA_CA_CERTS put off (util/caCertificates.ts), it reads them. */
function secureAgent(): HttpsAgent {
  httpsAgent ??= new HttpsAgent({ keepAlive: false, ...deferredTrust() });
  return httpsAgent;
}

export async function httpGet(url: string, options: HttpGetOptions): Promise<HttpResponse> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onAbort = () => controller.abort();
  if (options.signal?.aborted) controller.abort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // Loaded on first use: a run from local files never pays for it at start-up.
    const { default: nodeFetch } = await import('node-fetch');
    const response = await nodeFetch(url, {
      headers: { 'user-agent': `rxtrain/${VERSION}`, 'accept-encoding': 'identity', ...options.headers },
      compress: false,
      follow: options.maxRedirects ?? 5,
      agent: (target) => (target.protocol === 'https:' ? secureAgent() : httpAgent),
      signal: controller.signal,
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of response.headers) headers[name.toLowerCase()] = value;
    return {
      status: response.status,
      statusText: response.statusText,
      headers,
      url: response.url || url,
      body: response.body as unknown as Readable,
    };
  } catch (error) {
    if (timedOut) {
      throw new FetchError('E_FETCH_TIMEOUT', url, `no response within ${options.timeoutMs} ms`, {
        retryable: true,
      });
    }
    if (options.signal?.aborted) throw options.signal.reason;
    if ((error as { type?: string }).type === 'max-redirect') {
      throw new FetchError('E_FETCH_STATUS', url, `more than ${options.maxRedirects ?? 5} redirects`);
    }
    throw connectionError(url, error as NodeJS.ErrnoException);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** A socket-level failure as a retryable FetchError with a readable cause. */
export function connectionError(url: string, error: NodeJS.ErrnoException): FetchError {
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'connection closed',
    ETIMEDOUT: 'connection timed out',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ERR_STREAM_PREMATURE_CLOSE: 'connection closed before the end of the body',
  };
  const code = error.code ?? '';
  const detail = known[code] ? `${known[code]} (${code})` : error.message || code || 'connection failed';
  // A host that does not exist will not appear on retry; everything else may be transient.
  return new FetchError('E_FETCH', url, detail, { cause: error, retryable: code !== 'ENOTFOUND' });
}

/** A Content-Length (or other whole-number header), or undefined if absent or malformed. */
export function headerNumber(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** If-Range needs a strong validator; a weak ETag (W/"…") cannot be used. */
export function strongEtag(etag: string | undefined): string | undefined {
  return etag && !etag.startsWith('W/') ? etag : undefined;
}

/** `Content-Range: bytes <start>-<end>/<total or *>`; undefined if it is not that. */
export function parseContentRange(
  value: string | undefined,
): { start: number; total: number | undefined } | undefined {
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value ?? '');
  if (!range) return undefined;
  return { start: Number(range[1]), total: range[3] === '*' ? undefined : Number(range[3]) };
}
