/**
 * `rxtrain serve`'s HTTP server. Three kinds of URL, and nothing else:
 *
 *   /                        the live page (livePage.ts)
 *   /events                  server-sent events: `update`, the sections of the page that changed
 *   /runs/<key>/<file>       one of a run's files (livePage.ts: RUN_FILES), for a run it lists
 *
 * Every other URL is 404 with an empty body. No part of a URL is ever joined to a path: a run is
 * found by its key in the index and a file by its name in a fixed list, so `..`, `%2e%2e`, an
 * absolute path or an encoded slash cannot name anything. A file is opened with O_NOFOLLOW and
 * must be a regular file in a directory whose real path is still under the given directory, so a
 * symbolic link planted in a run directory serves nothing either.
 *
 * Bound to 127.0.0.1 unless told otherwise; while bound to loopback, a request whose Host is not
 * a loopback name is refused (421), so a web page elsewhere cannot reach it by DNS rebinding.
 *
 * Each update is a snapshot of whole sections, so a client that reads slowly is never sent a
 * queue: while its socket is full it is skipped, and when it drains it gets the state of then.
 */
import { closeSync, constants, createReadStream, fstatSync, openSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, sep } from 'node:path';
import type { StageDefinition } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { LIVE_CSP, LivePage, RUN_FILES } from './livePage.js';
import { RunIndex } from './runIndex.js';

export interface ServeOptions {
  /** Directories holding runs (or runs themselves). */
  dirs: readonly string[];
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** Where the runs' data stages find their downloads, to draw the misclassified examples. */
  cacheDir: string;
  stages?: readonly StageDefinition[];
  /** Milliseconds between rescans of the directories (default 2000). */
  rescanMs?: number;
  /** Most updates a second a browser is sent, as the milliseconds between them (default 250). */
  updateMs?: number;
  onWarning?: (message: string) => void;
}

export interface RunningServer {
  url: string;
  port: number;
  index: RunIndex;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const HEADERS = {
  'Content-Security-Policy': LIVE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

interface Watcher {
  res: ServerResponse;
  /** What this browser was last sent of each section. */
  sent: Map<string, string>;
  sentOrder: string;
  timer?: NodeJS.Timeout;
  blocked: boolean;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  for (const dir of options.dirs) {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {}
    if (!isDir) throw new RxtrainError('E_USAGE', `${dir}: no such directory`);
  }
  const watchers = new Set<Watcher>();
  const updateMs = options.updateMs ?? 250;
  const changed = () => {
    for (const w of watchers) schedule(w);
  };
  const index = new RunIndex(options.dirs, { onChange: changed, rescanMs: options.rescanMs });
  const page = new LivePage(index, { ...options, onChange: changed });

  const schedule = (w: Watcher) => {
    w.timer ??= setTimeout(() => {
      w.timer = undefined;
      send(w);
    }, updateMs);
  };
  const send = (w: Watcher) => {
    if (w.blocked || w.res.destroyed) return;
    const sections = page.sections();
    const fresh = sections.filter((s) => w.sent.get(s.id) !== s.html);
    const order = sections.filter((s) => s.id !== 'subtitle').map((s) => s.id);
    if (fresh.length === 0 && order.join() === w.sentOrder) return;
    for (const s of fresh) w.sent.set(s.id, s.html);
    w.sentOrder = order.join();
    const ok = w.res.write(`event: update\ndata: ${JSON.stringify({ sections: fresh, order })}\n\n`);
    if (!ok) {
      w.blocked = true;
      w.res.once('drain', () => {
        w.blocked = false;
        send(w);
      });
    }
  };

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch {
      if (!res.headersSent) empty(res, 500);
      else res.destroy();
    }
  });
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return empty(res, 405);
    if (LOOPBACK.has(host) && !LOOPBACK.has(hostName(req.headers.host))) return empty(res, 421);
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/') {
      const body = Buffer.from(page.html());
      res.writeHead(200, {
        ...HEADERS,
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': body.length,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/events') return openStream(req, res);
    const m = /^\/runs\/([0-9a-f]{12})\/([a-z0-9.]+)$/.exec(path);
    if (m && RUN_FILES.includes(m[2]!)) return serveFile(res, m[1]!, m[2]!, req.method === 'HEAD');
    empty(res, 404);
  };

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      ...HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'keep-alive',
    });
    if (req.method === 'HEAD') return void res.end();
    // A browser that loses the connection tries again after a second.
    res.write('retry: 1000\n\n');
    const w: Watcher = { res, sent: new Map(), sentOrder: '', blocked: false };
    watchers.add(w);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    ping.unref();
    res.on('close', () => {
      watchers.delete(w);
      clearInterval(ping);
      clearTimeout(w.timer);
    });
    send(w);
  };

  const serveFile = (res: ServerResponse, key: string, name: string, head: boolean) => {
    const run = index.get(key);
    if (!run) return empty(res, 404);
    let fd: number | undefined;
    try {
      const dir = realpathSync(run.tail.dir);
      if (!(dir === run.root || dir.startsWith(run.root + sep))) return empty(res, 404);
      fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW);
      const stat = fstatSync(fd);
      if (!stat.isFile()) {
        closeSync(fd);
        return empty(res, 404);
      }
      const text = name !== 'weights.f32';
      res.writeHead(200, {
        ...HEADERS,
        'Content-Type': text ? 'text/plain; charset=utf-8' : 'application/octet-stream',
        'Content-Length': stat.size,
        ...(text ? {} : { 'Content-Disposition': `attachment; filename="${name}"` }),
      });
      if (head || stat.size === 0) {
        closeSync(fd);
        res.end();
        return;
      }
      // The length sent is the length at open: a log that grows meanwhile is cut there.
      createReadStream('', { fd, start: 0, end: stat.size - 1 }).pipe(res);
    } catch {
      if (fd !== undefined) closeSync(fd);
      empty(res, 404);
    }
  };

  index.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      index.close();
      reject(
        error.code === 'EADDRINUSE'
          ? new RxtrainError(
              'E_USAGE',
              `port ${options.port} on ${host} is in use (choose another with --port)`,
            )
          : new RxtrainError(
              'E_USAGE',
              `cannot listen on ${host}:${options.port} (${error.code ?? error.message})`,
            ),
      );
    });
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    index,
    close: () =>
      new Promise<void>((resolve) => {
        index.close();
        for (const w of watchers) w.res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function empty(res: ServerResponse, status: number): void {
  res.writeHead(status, { ...HEADERS, 'Content-Length': 0 });
  res.end();
}

/** The host name of a Host header, without its port. */
function hostName(header: string | undefined): string {
  if (!header) return '';
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1);
  return header.split(':')[0]!;
}
