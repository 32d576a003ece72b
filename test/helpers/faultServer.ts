/**
 * A real HTTP server on 127.0.0.1 that serves fixed bytes with injected faults: error statuses,
 * Retry-After, bodies cut off mid-way (with or without Range support), stalls, throttling. Each
 * path has a list of behaviours, one per request in order (the last one repeats), and every
 * request is recorded so tests can say what the client did.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ServeOptions {
  /** Answer `Range: bytes=N-` with 206 (default true). */
  range?: boolean;
  etag?: string;
  /** Write this many bytes per chunk… */
  chunkBytes?: number;
  /** …waiting this long between chunks (throttling). */
  chunkDelayMs?: number;
  /** Destroy the connection after sending this many body bytes of this response. */
  dropAfter?: number;
  /** Stop sending after this many body bytes and hold the connection open. */
  stallAfter?: number;
  /** Send the body with a wrong Content-Length claim (bytes), for truncation tests. */
  contentLength?: number;
}

export type Behaviour =
  | { kind: 'serve'; data: Uint8Array; options?: ServeOptions }
  | { kind: 'status'; status: number; headers?: Record<string, string> };

export const serve = (data: Uint8Array, options?: ServeOptions): Behaviour => ({
  kind: 'serve',
  data,
  options,
});
export const status = (code: number, headers?: Record<string, string>): Behaviour => ({
  kind: 'status',
  status: code,
  headers,
});

export interface RecordedRequest {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
  status: number;
  /** Body bytes written before the response ended or broke off. */
  sent: number;
  /** performance.now() when the request arrived. */
  at: number;
}

export class FaultServer {
  readonly requests: RecordedRequest[] = [];
  /** Responses sending a body right now, and the most there ever were at once. */
  active = 0;
  maxActive = 0;
  private readonly sockets = new Set<Socket>();
  private readonly counts = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    private readonly routes: Record<string, Behaviour[]>,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(routes: Record<string, Behaviour[]>): Promise<FaultServer> {
    const server = createServer();
    const faults = new FaultServer(server, routes);
    server.on('request', (req, res) => {
      faults.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return faults;
  }

  url(path: string): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}${path}`;
  }

  /** Requests for `path` that got a full or partial body (200 or 206). */
  bodies(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path && (r.status === 200 || r.status === 206));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const list = this.routes[path];
    const n = this.counts.get(path) ?? 0;
    this.counts.set(path, n + 1);
    const record: RecordedRequest = {
      path,
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      status: 404,
      sent: 0,
      at: performance.now(),
    };
    this.requests.push(record);
    if (!list || list.length === 0) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    const behaviour = list[Math.min(n, list.length - 1)]!;
    if (behaviour.kind === 'status') {
      record.status = behaviour.status;
      res.writeHead(behaviour.status, behaviour.headers).end(`status ${behaviour.status}\n`);
      return;
    }
    const { data } = behaviour;
    const o = behaviour.options ?? {};
    const etag = o.etag ?? '"v1"';
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (
      (o.range ?? true) &&
      range &&
      (ifRange === undefined || ifRange === etag) &&
      Number(range[1]) < data.length
    ) {
      start = Number(range[1]);
      record.status = 206;
      res.writeHead(206, {
        'content-length': String(data.length - start),
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'accept-ranges': 'bytes',
        etag,
      });
    } else {
      record.status = 200;
      res.writeHead(200, {
        'content-length': String(o.contentLength ?? data.length),
        ...((o.range ?? true) ? { 'accept-ranges': 'bytes' } : {}),
        etag,
      });
    }
    res.flushHeaders(); // so a client sees the response even when no body byte follows
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.send(res, data.subarray(start), o, record);
    } finally {
      this.active--;
    }
  }

  private async send(
    res: ServerResponse,
    body: Uint8Array,
    o: ServeOptions,
    record: RecordedRequest,
  ): Promise<void> {
    const chunk = o.chunkBytes ?? 64 * 1024;
    for (let at = 0; at < body.length; ) {
      let end = Math.min(body.length, at + chunk);
      if (o.dropAfter !== undefined && end > o.dropAfter) end = Math.max(at, o.dropAfter);
      if (o.stallAfter !== undefined && end > o.stallAfter) end = Math.max(at, o.stallAfter);
      if (end > at) {
        const ok = res.write(body.subarray(at, end));
        record.sent += end - at;
        at = end;
        if (!ok) await drainOrClose(res);
        if (res.destroyed) return;
      }
      if (o.dropAfter !== undefined && at >= o.dropAfter) {
        // Let the bytes leave, then cut the connection mid-body.
        await new Promise((resolve) => setTimeout(resolve, 20));
        res.socket?.destroy();
        return;
      }
      if (o.stallAfter !== undefined && at >= o.stallAfter) {
        await new Promise<void>((resolve) => res.once('close', resolve));
        return;
      }
      if (o.chunkDelayMs) await new Promise((resolve) => setTimeout(resolve, o.chunkDelayMs));
    }
    res.end();
  }
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
