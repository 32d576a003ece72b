/**
 * A local HTTP server for streaming tests and benchmarks: serves one body (a buffer or a file) on
 * 127.0.0.1, optionally throttled to a byte rate, and counts what `res.write` has accepted, so a
 * caller can see how far the sender got.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServeOptions {
  /** Throttle to this many bytes per second (default: as fast as the client reads). */
  bytesPerSecond?: number;
}

export interface ServedBody {
  /** `http://127.0.0.1:PORT`; any path serves the body. */
  url: string;
  /** Bytes handed to the socket so far (for the latest request). */
  stats: { written: number; requests: number };
  close(): void;
}

const SLICE = 16 * 1024;

/** Serve `body` (bytes, or the path of a file streamed from disk) to every request. */
export async function serveBody(body: Uint8Array | string, options: ServeOptions = {}): Promise<ServedBody> {
  const size = typeof body === 'string' ? statSync(body).size : body.byteLength;
  const stats = { written: 0, requests: 0 };
  const server = createServer((_req, res) => {
    stats.requests++;
    stats.written = 0;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (typeof body === 'string') sendFile(body, res, stats, options);
    else sendBuffer(body, res, stats, options);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Bytes the throttle allows by now. */
function allowance(started: number, options: ServeOptions): number {
  if (!options.bytesPerSecond) return Number.POSITIVE_INFINITY;
  return ((performance.now() - started) / 1000) * options.bytesPerSecond + SLICE;
}

function sendBuffer(
  body: Uint8Array,
  res: ServerResponse,
  stats: { written: number },
  options: ServeOptions,
) {
  const started = performance.now();
  const pump = () => {
    while (stats.written < body.byteLength) {
      if (stats.written >= allowance(started, options)) {
        setTimeout(pump, 5);
        return;
      }
      const end = Math.min(body.byteLength, stats.written + SLICE);
      const ok = res.write(body.subarray(stats.written, end));
      stats.written = end;
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

function sendFile(path: string, res: ServerResponse, stats: { written: number }, options: ServeOptions) {
  const started = performance.now();
  const file = createReadStream(path, { highWaterMark: 256 * 1024 });
  file.on('data', (chunk) => {
    stats.written += chunk.length;
    const ok = res.write(chunk);
    const wait = (stats.written - allowance(started, options)) / (options.bytesPerSecond ?? 1);
    if (!ok || wait > 0) {
      file.pause();
      const resume = () => file.resume();
      if (!ok) res.once('drain', () => (wait > 0 ? setTimeout(resume, wait * 1000) : resume()));
      else setTimeout(resume, wait * 1000);
    }
  });
  file.on('end', () => res.end());
  file.on('error', (error) => res.destroy(error));
  res.on('close', () => file.destroy());
}
