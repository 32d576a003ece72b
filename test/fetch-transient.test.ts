/**
 * Transient faults, injected by a real HTTP server on 127.0.0.1 serving the notebook-layout
 * MNIST.tar.gz (a tenth of MNIST): each run must end with the same weights as a local copy of the
 * same archive, and the cache
 * must then hold exactly the served archive, verified.
 */
import test, { type ExecutionContext } from 'ava';
import type { RxtrainEvent } from '../src/pipeline/events.js';
import { type Behaviour, FaultServer, serve, status } from './helpers/faultServer.js';
import { mnistSubset, notebookArchive } from './helpers/index.js';
import { assertCache, localReference, runRemote, scratchDir, sha256 } from './helpers/remoteRun.js';

let archive: Buffer;
let reference: string;

test.before(async () => {
  archive = await notebookArchive(mnistSubset());
  reference = await localReference(archive);
});

const PATH = '/MNIST.tar.gz';

async function transient(
  t: ExecutionContext,
  behaviours: Behaviour[],
  overrides: string[] = [],
): Promise<{ server: FaultServer; events: RxtrainEvent[] }> {
  const server = await FaultServer.start({ [PATH]: behaviours });
  const cache = scratchDir(t);
  try {
    const { summary, events } = await runRemote([`fetch.url=${server.url(PATH)}`, ...overrides], cache);
    t.is(summary.status, 'completed');
    t.is(summary.weightsSha256, reference, 'same weights as from a local copy');
    assertCache(t, cache, archive);
    return { server, events };
  } finally {
    await server.close();
  }
}

const warnings = (events: RxtrainEvent[], code: string) =>
  events
    .filter((e) => e.type === 'warning' && e.code === code)
    .map((e) => (e as { message: string }).message);

test('500 then success: retried, and the run trains as from a local copy', async (t) => {
  const { server, events } = await transient(t, [status(500), serve(archive)]);
  t.deepEqual(
    server.requests.map((r) => r.status),
    [500, 200],
  );
  t.regex(warnings(events, 'W_FETCH_RETRY')[0]!, /HTTP 500 Internal Server Error; retry 1 of 5/);
  const progress = events.filter((e) => e.type === 'stage-progress' && e.stage === 'fetch').at(-1) as
    | { bytes: number; total: number; rate: number; file: string }
    | undefined;
  t.is(progress?.file, 'MNIST.tar.gz');
  t.is(progress?.bytes, archive.length, 'progress: bytes received');
  t.is(progress?.total, archive.length, 'progress: total, from Content-Length');
  t.true((progress?.rate ?? 0) > 0, 'progress: rate');
});

test('429 with Retry-After: 1 waits at least a second, then succeeds', async (t) => {
  const { server } = await transient(t, [status(429, { 'retry-after': '1' }), serve(archive)]);
  const [first, second] = server.requests;
  t.is(first!.status, 429);
  t.is(second!.status, 200);
  t.true(second!.at - first!.at >= 990, `waited ${second!.at - first!.at} ms`);
});

test('connection dropped mid-body, server with Range support: resumed where it broke off', async (t) => {
  const half = archive.length >> 1;
  const { server } = await transient(t, [serve(archive, { dropAfter: half }), serve(archive)]);
  const [first, second] = server.bodies(PATH);
  t.is(first!.sent, half);
  // The client asks from the bytes it received: up to half (a reset can lose what was in flight).
  const from = Number(/^bytes=(\d+)-$/.exec(second!.range ?? '')?.[1]);
  t.true(from > 0 && from <= half, `resumed at ${second!.range}`);
  t.is(second!.ifRange, '"v1"');
  t.is(second!.status, 206);
  t.is(second!.sent, archive.length - from, 'only the missing bytes were sent again');
});

test('connection dropped mid-body, server without Range support: restarted, nothing delivered twice', async (t) => {
  const { server } = await transient(t, [
    serve(archive, { dropAfter: archive.length >> 1, range: false }),
    serve(archive, { range: false }),
  ]);
  const [, second] = server.bodies(PATH);
  t.is(second!.status, 200, 'the server ignored the Range request');
  t.is(second!.sent, archive.length);
});

test('a stall longer than the idle timeout: the request is abandoned and resumed', async (t) => {
  const quarter = archive.length >> 2;
  const { server, events } = await transient(
    t,
    [serve(archive, { stallAfter: quarter }), serve(archive)],
    ['fetch.idleTimeoutMs=1000'],
  );
  t.is(server.bodies(PATH)[1]!.range, `bytes=${quarter}-`);
  t.regex(warnings(events, 'W_FETCH_RETRY')[0]!, new RegExp(`no data for 1000 ms after ${quarter} bytes`));
});

test('wrong bytes on the first mirror: the checksum fails, the next mirror is used', async (t) => {
  const bad = Buffer.from(archive);
  bad[bad.length >> 1] ^= 0xff;
  const server = await FaultServer.start({
    '/a/MNIST.tar.gz': [serve(bad)],
    '/b/MNIST.tar.gz': [serve(archive)],
  });
  const cache = scratchDir(t);
  try {
    const { summary, events } = await runRemote(
      [
        `fetch.url=${server.url('/a/MNIST.tar.gz')}`,
        `fetch.mirrors=[${server.url('/b/MNIST.tar.gz')}]`,
        `fetch.sha256=${sha256(archive)}`,
      ],
      cache,
    );
    t.is(summary.weightsSha256, reference);
    assertCache(t, cache, archive);
    t.regex(
      warnings(events, 'W_MIRROR_FAILED')[0]!,
      /a\/MNIST.tar.gz: sha256 mismatch: expected [0-9a-f]{64}, got/,
    );
    t.deepEqual(
      server.requests.map((r) => r.path),
      ['/a/MNIST.tar.gz', '/b/MNIST.tar.gz'],
      'the second mirror is read from the start, not resumed on bad bytes',
    );
    t.is(server.requests[1]!.range, undefined);
  } finally {
    await server.close();
  }
});

test('a second run reads the cache: no request, same weights', async (t) => {
  const server = await FaultServer.start({ [PATH]: [serve(archive)] });
  const cache = scratchDir(t);
  try {
    await runRemote([`fetch.url=${server.url(PATH)}`], cache);
    const { summary, events } = await runRemote([`fetch.url=${server.url(PATH)}`], cache);
    t.is(server.requests.length, 1);
    t.is(summary.weightsSha256, reference);
    t.true(events.some((e) => e.type === 'cache' && e.action === 'hit'));
  } finally {
    await server.close();
  }
});
