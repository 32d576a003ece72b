/**
 * One HTTP GET on node:http/https, resolved when the response headers arrive. The body is handed
 * back unread, in paused mode, so the caller reads it only as fast as it can use it (TCP's window
 * then stops the sender). Redirects are followed; the body is never decoded (`Accept-Encoding:
 * identity`), so byte counts, `Range` offsets and checksums all refer to the file itself.
 *
 * Failures become `FetchError`s naming the URL, marked retryable when trying again may help.
 */
import { get as httpGetRaw, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { get as httpsGetRaw } from 'node:https';
import { FetchError } from '../pipeline/errors.js';
import { VERSION } from '../version.js';

export interface HttpResponse {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: string;
  /** Unread, paused. Destroy it if you do not read it to the end. */
  body: IncomingMessage;
}

export interface HttpGetOptions {
  headers?: Record<string, string>;
  /** Most ms to wait for the response headers (the connection included). */
  timeoutMs: number;
  signal?: AbortSignal;
  maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export async function httpGet(url: string, options: HttpGetOptions): Promise<HttpResponse> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const response = await requestOnce(current, options);
    const location = response.headers.location;
    if (!REDIRECTS.has(response.status) || !location) return response;
    response.body.destroy();
    if (hop >= (options.maxRedirects ?? 5)) {
      throw new FetchError('E_FETCH_STATUS', url, `more than ${options.maxRedirects ?? 5} redirects`);
    }
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new FetchError('E_FETCH_STATUS', url, `redirected to an unsupported URL ${next.href}`);
    }
    current = next.href;
  }
}

function requestOnce(url: string, options: HttpGetOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const get = url.startsWith('https:') ? httpsGetRaw : httpGetRaw;
    const request = get(
      url,
      {
        headers: { 'user-agent': `rxtrain/${VERSION}`, 'accept-encoding': 'identity', ...options.headers },
        // A fresh connection per request: a download is few, long requests, and no idle socket
        // should outlive the run.
        agent: false,
      },
      (body) => {
        body.pause();
        settle(() =>
          resolve({
            status: body.statusCode ?? 0,
            statusText: body.statusMessage ?? '',
            headers: body.headers,
            url,
            body,
          }),
        );
      },
    );
    const timer = setTimeout(() => {
      const error = new FetchError('E_FETCH_TIMEOUT', url, `no response within ${options.timeoutMs} ms`, {
        retryable: true,
      });
      settle(() => reject(error));
      request.destroy(error);
    }, options.timeoutMs);
    const onAbort = () => {
      settle(() => reject(options.signal!.reason));
      request.destroy();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error: NodeJS.ErrnoException) => settle(() => reject(connectionError(url, error))));
  });
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
  };
  const code = error.code ?? '';
  const detail = known[code] ? `${known[code]} (${code})` : error.message || code || 'connection failed';
  // A host that does not exist will not appear on retry; everything else may be transient.
  return new FetchError('E_FETCH', url, detail, { cause: error, retryable: code !== 'ENOTFOUND' });
}
