/**
 * Permanent faults, through the real CLI: exit 1, one line on stderr naming the URL and the
 * cause, and nothing left in the cache.
 */
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { type Behaviour, FaultServer, serve, status } from './helpers/faultServer.js';
import { mnistSubset, notebookArchive, runCli } from './helpers/index.js';
import { assertCache, FAST_RETRY, QUICK, remoteRunArgs, scratchDir, sha256 } from './helpers/remoteRun.js';

let archive: Buffer;

test.before(async () => {
  archive = await notebookArchive(mnistSubset());
});

const PATH = '/MNIST.tar.gz';

async function runFailing(t: ExecutionContext, url: string, overrides: string[]): Promise<string> {
  const cache = scratchDir(t);
  const sets = [...QUICK, ...FAST_RETRY, 'fetch.retries=2', `fetch.url=${url}`, ...overrides];
  const result = await runCli(remoteRunArgs(join(scratchDir(t), 'run'), cache, sets));
  t.is(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, `one line: ${result.stderr}`);
  t.true(lines[0]!.includes(url), `names the URL: ${lines[0]}`);
  assertCache(t, cache, undefined);
  return lines[0]!;
}

async function permanent(
  t: ExecutionContext,
  behaviours: Behaviour[],
  expected: RegExp,
  overrides: string[] = [],
): Promise<FaultServer> {
  const server = await FaultServer.start({ [PATH]: behaviours });
  try {
    const line = await runFailing(t, server.url(PATH), overrides);
    t.regex(line, expected);
    return server;
  } finally {
    await server.close();
  }
}

test('404: no retry, one line', async (t) => {
  const server = await permanent(t, [status(404)], /^rxtrain: E_FETCH_STATUS: http:\S+: HTTP 404 Not Found$/);
  t.is(server.requests.length, 1);
});

test('500 every time: retried, then one line with the attempts', async (t) => {
  const server = await permanent(t, [status(500)], /: HTTP 500 Internal Server Error \(3 attempts\)$/);
  t.is(server.requests.length, 3);
});

test('429 asking to wait longer than maxRetryAfterMs fails at once', async (t) => {
  await permanent(
    t,
    [status(429, { 'retry-after': '3600' })],
    /: HTTP 429 Too Many Requests; the server asks to wait 3600 s, longer than fetch.maxRetryAfterMs$/,
  );
});

// A server that drops every response after some bytes still makes progress: each resumed
// attempt resets the retry count, so that is a slow success, not a permanent failure.
test('connection dropped before any body byte, every time', async (t) => {
  await permanent(
    t,
    [serve(archive, { dropAfter: 0 })],
    /^rxtrain: E_FETCH: http:\S+: connection lost after 0 bytes: .+ \(3 attempts\)$/,
  );
});

test('a server that always stalls: idle timeout on every attempt', async (t) => {
  await permanent(
    t,
    [serve(archive, { stallAfter: 0 })],
    // Long enough that a loaded machine's late response headers are not taken for the stall.
    /^rxtrain: E_FETCH_TIMEOUT: http:\S+: no data for 1500 ms after 0 bytes \(fetch.idleTimeoutMs\) \(3 attempts\)$/,
    ['fetch.idleTimeoutMs=1500'],
  );
});

test('wrong bytes with a checksum: mismatch named, nothing cached', async (t) => {
  const bad = Buffer.from(archive);
  bad[100] ^= 1;
  await permanent(
    t,
    [serve(bad)],
    new RegExp(
      `^rxtrain: E_FETCH_CHECKSUM: http:\\S+: sha256 mismatch: expected ${sha256(archive)}, got ${sha256(bad)}; not cached$`,
    ),
    [`fetch.sha256=${sha256(archive)}`],
  );
});

test('wrong bytes with verify: streaming: the run fails at the end of the file, nothing cached', async (t) => {
  const bad = Buffer.from(archive);
  bad[bad.length - 100] ^= 1;
  await permanent(t, [serve(bad)], /: md5 mismatch: expected [0-9a-f]{32}, got [0-9a-f]{32}; not cached$/, [
    'fetch.verify=streaming',
    `fetch.md5=${'ab'.repeat(16)}`,
  ]);
});

test('a truncated gzip served whole: found before the cache commits, one line', async (t) => {
  await permanent(
    t,
    [serve(archive.subarray(0, archive.length - 5000))],
    /^rxtrain: E_GZIP: http:\S+: gzip data is truncated or corrupt \(unexpected end of file\); not cached$/,
  );
});

test('every mirror failing: one line listing each', async (t) => {
  const server = await FaultServer.start({
    '/a/MNIST.tar.gz': [status(404)],
    '/b/MNIST.tar.gz': [status(503)],
  });
  try {
    const line = await runFailing(t, server.url('/a/MNIST.tar.gz'), [
      `fetch.mirrors=[${server.url('/b/MNIST.tar.gz')}]`,
    ]);
    t.regex(
      line,
      /: every mirror failed: http:\S+\/a\/MNIST.tar.gz: HTTP 404 Not Found; http:\S+\/b\/MNIST.tar.gz: HTTP 503 Service Unavailable \(3 attempts\)$/,
    );
  } finally {
    await server.close();
  }
});

test('nothing listening: connection refused, retried, one line', async (t) => {
  const server = await FaultServer.start({});
  const url = server.url(PATH);
  await server.close();
  const line = await runFailing(t, url, []);
  t.regex(line, /^rxtrain: E_FETCH: http:\S+: connection refused \(ECONNREFUSED\) \(3 attempts\)$/);
});
