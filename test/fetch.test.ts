/** The fetch stage on its own: bytes exactly once, demand-driven reads, verification, the cache. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { emptyFlow } from '../src/flow/index.js';
import type { FileChunk, Message } from '../src/pipeline/messages.js';
import { fetchSettings, fetchStage } from '../src/stages/fetch.js';
import { backoffDelay, parseRetryAfter } from '../src/util/backoff.js';
import { Prng } from '../src/util/random.js';
import { FaultServer, serve } from './helpers/faultServer.js';
import { collect, mnistFiles, mnistSubset, notebookArchive, subscribeManually } from './helpers/index.js';
import { assertCache, cacheFiles, embeddedReference, runRemote, scratchDir } from './helpers/remoteRun.js';
import { waitFor } from './helpers/resume.js';
import { stageContext } from './helpers/stageContext.js';

let archive: Buffer;
test.before(async () => {
  // A tenth of MNIST in the notebook's layout: these tests are about bytes in transit.
  archive = await notebookArchive(mnistSubset());
});

function fetchFlow(settings: Record<string, unknown>, cacheDir: string) {
  const ctx = stageContext('fetch', { cacheDir });
  const parsed = fetchSettings.parse({ retryDelayMs: 5, maxRetryDelayMs: 50, ...settings });
  return { flow: fetchStage.create(parsed, ctx)(emptyFlow), ctx };
}

/** The bytes of one file as emitted, checking that offsets are contiguous and `last` is last. */
function joined(t: import('ava').ExecutionContext, messages: readonly Message[]): Buffer {
  const chunks = messages.filter((m): m is FileChunk => m.kind === 'bytes');
  let offset = 0;
  for (const [i, c] of chunks.entries()) {
    t.is(c.offset, offset);
    t.is(c.last, i === chunks.length - 1);
    offset += c.bytes.byteLength;
  }
  return Buffer.concat(chunks.map((c) => c.bytes));
}

test('backoff doubles up to its cap, with seeded jitter in [d/2, d]', (t) => {
  const policy = { baseMs: 100, maxMs: 1000 };
  const a = new Prng(7);
  const b = new Prng(7);
  for (let retry = 0; retry < 8; retry++) {
    const d = Math.min(1000, 100 * 2 ** retry);
    const delay = backoffDelay(retry, policy, a);
    t.true(delay >= d / 2 && delay <= d, `retry ${retry}: ${delay}`);
    t.is(backoffDelay(retry, policy, b), delay, 'same seed, same schedule');
  }
});

test('Retry-After: seconds or an HTTP date', (t) => {
  const now = new Date('2025-01-01T00:00:00Z');
  t.is(parseRetryAfter('3', now), 3000);
  t.is(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now), 10_000);
  t.is(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);
});

for (const range of [true, false]) {
  test(`a body cut twice ${range ? 'and resumed with Range' : 'on a server without Range'}: every byte exactly once, in order`, async (t) => {
    const server = await FaultServer.start({
      '/a.tar.gz': [
        serve(archive, { dropAfter: Math.floor(archive.length * 0.3), range }),
        serve(archive, { dropAfter: Math.floor(archive.length * 0.7), range }),
        serve(archive, { range }),
      ],
    });
    try {
      const cache = scratchDir(t);
      const out = await collect(fetchFlow({ url: server.url('/a.tar.gz') }, cache).flow);
      t.true(joined(t, out).equals(archive));
      t.deepEqual(
        server.bodies('/a.tar.gz').map((r) => r.status),
        range ? [200, 206, 206] : [200, 200, 200],
      );
      assertCache(t, cache, archive);
    } finally {
      await server.close();
    }
  });
}

test('reads are demand-driven: a consumer that stops holds the socket back, and is not taken for an idle server', async (t) => {
  // Larger than what the loopback socket buffers can hold (a few MiB), so holding back shows.
  const big = Buffer.alloc(48 * 2 ** 20);
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
  const server = await FaultServer.start({ '/big.bin': [serve(big, { chunkBytes: 16 * 1024 })] });
  try {
    const { flow, ctx } = fetchFlow({ url: server.url('/big.bin'), idleTimeoutMs: 1000 }, scratchDir(t));
    const run = subscribeManually(flow);
    run.demand.request(2);
    // Counted, not timed: wait (bounded) for the two chunks asked for, then hold them well past
    // the idle timeout until the server can send no more — however slow the machine is.
    await waitFor('the two chunks asked for', () => run.items.length >= 2 || run.error !== undefined);
    // Held well past the 1 s idle timeout: the pause is the consumer's, not the server's.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    let last = -1;
    await waitFor(
      'the server to stop sending',
      () => {
        const sent = server.requests[0]!.sent;
        const settled = sent === last;
        last = sent;
        return settled;
      },
      60_000,
      100,
    );
    t.is(run.error, undefined);
    t.is(run.items.length, 2, 'no more than the demand');
    const sent = server.requests[0]!.sent;
    t.log(`the server could send ${sent} of ${big.length} bytes while the consumer held two chunks`);
    t.true(sent < 16 * 2 ** 20, `the server could send only ${sent} of ${big.length} bytes`);
    run.demand.request(1_000_000_000);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (run.completed || run.error) {
          clearInterval(timer);
          resolve();
        }
      }, 20);
    });
    t.is(run.error, undefined);
    t.true(joined(t, run.items).equals(big));
    t.is(server.requests.length, 1, 'no retry: the pause was ours, not the server’s');
    t.false(ctx.emitted.some((e) => e.type === 'warning'));
  } finally {
    await server.close();
  }
});

test('without a checksum bytes flow on while the download is still arriving', async (t) => {
  const server = await FaultServer.start({
    '/a.tar.gz': [serve(archive, { chunkBytes: 64 * 1024, chunkDelayMs: 20 })],
  });
  try {
    const run = subscribeManually(fetchFlow({ url: server.url('/a.tar.gz') }, scratchDir(t)).flow);
    run.demand.request(1);
    while (run.items.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    t.true(
      server.requests[0]!.sent < archive.length / 2,
      `first chunk after ${server.requests[0]!.sent} bytes`,
    );
    run.subscription.unsubscribe();
  } finally {
    await server.close();
  }
});

test('with a checksum, nothing flows on until the whole file is verified and cached', async (t) => {
  const server = await FaultServer.start({
    '/a.tar.gz': [serve(archive, { chunkBytes: 64 * 1024, chunkDelayMs: 5 })],
  });
  try {
    const { createHash } = await import('node:crypto');
    const cache = scratchDir(t);
    const md5 = createHash('md5').update(archive).digest('hex');
    const run = subscribeManually(fetchFlow({ url: server.url('/a.tar.gz'), md5 }, cache).flow);
    run.demand.request(1);
    while (run.items.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    t.is(server.requests[0]!.sent, archive.length);
    t.is(cacheFiles(cache).length, 2, 'committed before the first byte left');
    run.subscription.unsubscribe();
  } finally {
    await server.close();
  }
});

test('a corrupted cache entry is detected while read, removed, and downloaded afresh next time', async (t) => {
  const server = await FaultServer.start({ '/a.tar.gz': [serve(archive)] });
  try {
    const cache = scratchDir(t);
    const url = server.url('/a.tar.gz');
    await collect(fetchFlow({ url }, cache).flow);
    const [file] = cacheFiles(cache).filter((f) => !f.endsWith('.json'));
    const path = join(cache, 'downloads', file!);
    const bytes = readFileSync(path);
    bytes[12345] ^= 0xff;
    writeFileSync(path, bytes);
    await t.throwsAsync(collect(fetchFlow({ url }, cache).flow), {
      code: 'E_CACHE',
      message: /the cached copy of http:\S+ is corrupt \(sha256 mismatch: .*\); removed it/,
    } as never);
    t.deepEqual(cacheFiles(cache), []);
    const again = await collect(fetchFlow({ url }, cache).flow);
    t.true(joined(t, again).equals(archive));
    t.is(server.bodies('/a.tar.gz').length, 2);
  } finally {
    await server.close();
  }
});

test('a files: list at a base URL: downloaded at most `concurrency` at once, verified by md5, trained on', async (t) => {
  const f = mnistFiles();
  const { createHash } = await import('node:crypto');
  const names = Object.keys(f).map((n) => `${n}.gz`);
  const gz = Object.fromEntries(Object.entries(f).map(([n, data]) => [`${n}.gz`, gzipSync(data)]));
  const server = await FaultServer.start(
    Object.fromEntries(
      names.map((n) => [`/mnist/${n}`, [serve(gz[n]!, { chunkBytes: 128 * 1024, chunkDelayMs: 5 })]]),
    ),
  );
  try {
    const cache = scratchDir(t);
    const md5 = names.map((n) => `${n}: ${createHash('md5').update(gz[n]!).digest('hex')}`).join(', ');
    const { summary, events } = await runRemote(
      [
        `fetch.url=${server.url('/mnist/')}`,
        `fetch.files=[${names.join(', ')}]`,
        `fetch.md5={${md5}}`,
        'fetch.concurrency=2',
      ],
      cache,
    );
    t.is(summary.weightsSha256, await embeddedReference());
    t.is(server.maxActive, 2, 'two downloads overlapped, never more');
    t.is(server.requests.length, 4);
    t.is(readdirSync(join(cache, 'downloads')).length, 4);
    t.is(events.filter((e) => e.type === 'cache' && e.stage === 'fetch' && e.action === 'write').length, 4);
  } finally {
    await server.close();
  }
});

test('when the download holding the lock fails, the run waiting for it downloads instead', async (t) => {
  const server = await FaultServer.start({
    '/a.tar.gz': [serve(archive, { stallAfter: 0 }), serve(archive)],
  });
  try {
    const cache = scratchDir(t);
    // The holder's server stalls, so the holder fails by its idle timeout, after the other run has
    // begun to wait for the lock. 3 s, not less: the waiter's own download, from the same settings,
    // must not meet a 3 s gap on a loaded machine (at load 10, 500 ms gaps happened).
    const settings = { url: server.url('/a.tar.gz'), retries: 0, idleTimeoutMs: 3000 };
    const [first, second] = await Promise.allSettled([
      collect(fetchFlow(settings, cache).flow),
      collect(fetchFlow(settings, cache).flow),
    ]);
    const outcomes = [first, second].map((r) => r.status).sort();
    t.deepEqual(outcomes, ['fulfilled', 'rejected']);
    const failed = [first, second].find((r) => r.status === 'rejected') as PromiseRejectedResult;
    // The stalled server sends its headers and then nothing; on a loaded machine the headers can
    // themselves arrive after the timeout. Either way the holder timed out, and the waiter took over.
    t.regex(failed.reason.message, /no data for 3000 ms after 0 bytes|no response within 3000 ms/);
    const done = [first, second].find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Message[]>;
    t.true(joined(t, done.value).equals(archive));
    assertCache(t, cache, archive);
  } finally {
    await server.close();
  }
});
