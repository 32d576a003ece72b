/**
 * A real `redis-server` for the queue tests (never a mock): started on 127.0.0.1 on a free port, in
 * a temp directory, with the append-only file BullMQ's production guide asks for, so a restart on
 * the same port and directory finds every job where it was. `stop()` at teardown.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './index.js';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const hasRedis = existsSync(REDIS_SERVER);

export interface TestRedis {
  url: string;
  port: number;
  /** SIGTERM (a clean shutdown that writes the AOF out) or SIGKILL; resolves once it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and directory (after `kill`). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A port the kernel just handed out and took back: free unless someone grabs it in between. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Resolves once the server answers PING with PONG on a raw socket. */
async function answersPing(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Servers started by this test file: killed when its process exits, whatever happened. */
const servers = new Set<() => void>();
process.once('exit', () => {
  for (const kill of servers) kill();
});

export async function startRedis(): Promise<TestRedis> {
  const dir = tempDir('rxtrain-redis-');
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--save',
        '',
        '--daemonize',
        'no',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    const c = child;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    await answersPing(port, Date.now() + 20_000);
  };
  await start();
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    child?.kill(signal);
    await exited;
  };
  servers.add(() => child?.kill('SIGKILL'));
  return { url: `redis://127.0.0.1:${port}`, port, kill, restart: start, stop: () => kill('SIGKILL') };
}

/**
 * A `redis-server` that speaks only TLS (`rediss://`), with the certificate of test/fixtures/tls,
 * which only that directory's ca.pem vouches for. The caller waits until it answers.
 */
export async function startTlsRedis(tlsDir: string): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER,
    [
      ...['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1'],
      ...['--tls-cert-file', join(tlsDir, 'server.pem'), '--tls-key-file', join(tlsDir, 'server-key.pem')],
      ...['--tls-ca-cert-file', join(tlsDir, 'ca.pem'), '--tls-auth-clients', 'no'],
      ...['--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', tempDir('rxtrain-redis-tls-')],
    ],
    { stdio: 'ignore' },
  );
  const stop = () => child.kill('SIGKILL');
  servers.add(stop);
  return { url: `rediss://127.0.0.1:${port}`, stop };
}
