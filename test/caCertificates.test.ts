/**
 * NODE_EXTRA_CA_CERTS put off by bin/rxtrain.js (src/util/caCertificates.ts): rxtrain's own TLS
 * connections still trust the certificates it names, read when a connection first needs them.
 *
 * test/fixtures/tls holds a test certificate authority (ca.pem; its key was thrown away) and a
 * certificate it signed for 127.0.0.1 (server.pem, server-key.pem), valid until 2126:
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 …
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, get, type RequestOptions, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import test from 'ava';
import { probeRedis } from '../src/queue/connection.js';
import { parseRedisUrl } from '../src/queue/redisUrl.js';
import { DEFERRED_CA_CERTS, deferredTrust, trustedCertificates } from '../src/util/caCertificates.js';
import { mnistSubset, notebookArchive, ROOT, runCli } from './helpers/index.js';
import { hasRedis, startTlsRedis } from './helpers/redis.js';
import { FAST_RETRY, QUICK, remoteRunArgs, scratchDir } from './helpers/remoteRun.js';

const TLS = join(ROOT, 'test/fixtures/tls');
const CA = join(TLS, 'ca.pem');

async function httpsServer(body: Uint8Array): Promise<{ server: Server; url: string }> {
  const server = createHttpsServer(
    { key: readFileSync(join(TLS, 'server-key.pem')), cert: readFileSync(join(TLS, 'server.pem')) },
    (_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `https://127.0.0.1:${port}/MNIST.tar.gz` };
}

function defer(file: string | undefined): void {
  (globalThis as Record<symbol, unknown>)[DEFERRED_CA_CERTS] = file;
}

test.serial('nothing deferred: Node’s own store serves, no options', (t) => {
  defer(undefined);
  t.is(trustedCertificates(), undefined);
  t.deepEqual(deferredTrust(), {});
  defer('');
  t.is(trustedCertificates(), undefined);
});

test.serial('deferred: Node’s roots and the file’s certificates, one shared context', async (t) => {
  defer(CA);
  const ca = trustedCertificates()!;
  t.is(ca.length, rootCertificates.length + 1);
  t.is(ca.at(-1), readFileSync(CA, 'utf8'));
  const { secureContext } = deferredTrust();
  t.truthy(secureContext);
  t.is(deferredTrust().secureContext, secureContext);
  // The context verifies the test server's certificate, which Node's roots alone do not.
  const { server, url } = await httpsServer(new Uint8Array([1, 2, 3]));
  try {
    const status = await new Promise<number>((resolve, reject) =>
      get(url, { secureContext, agent: false } as RequestOptions, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject),
    );
    t.is(status, 200);
    const refused = await new Promise<Error | number>((resolve) =>
      get(url, { agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', resolve),
    );
    t.regex(String(refused), /certificate/);
  } finally {
    server.close();
  }
});

test.serial('a file that cannot be read is ignored with Node’s warning', async (t) => {
  const missing = join(ROOT, 'test/fixtures/tls/no-such.pem');
  defer(missing);
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
  const ca = trustedCertificates()!;
  t.is(ca.length, rootCertificates.length);
  t.regex((await warned).message, /^Ignoring extra certs from `.*no-such\.pem`, load failed: ENOENT/);
  defer(undefined);
});

(hasRedis ? test.serial : test.skip)('rediss:// trusts the deferred certificates too', async (t) => {
  const redis = await startTlsRedis(TLS);
  t.teardown(redis.stop);
  const target = parseRedisUrl(redis.url);
  defer(CA);
  // The server takes a moment to listen: the first probes may find nothing there yet.
  const deadline = Date.now() + 20_000;
  let version = '';
  while (!version) {
    try {
      version = (await probeRedis(target, 2000)).version;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  t.regex(version, /^\d+\./);
  defer(undefined);
  const refused = await probeRedis(target, 2000).then(
    () => 'connected',
    (error: Error) => error.message,
  );
  t.regex(refused, /cannot connect to Redis \(.*CERT.*\)/);
});

// Through the command itself (its first line puts the variable off): the download trusts the
// test authority only when NODE_EXTRA_CA_CERTS names it.
test('rxtrain run downloads over https from a server NODE_EXTRA_CA_CERTS vouches for', async (t) => {
  const { server, url } = await httpsServer(await notebookArchive(mnistSubset()));
  try {
    const sets = [...QUICK, ...FAST_RETRY, 'fetch.retries=0', `fetch.url=${url}`];
    const trusted = await runCli(remoteRunArgs(join(scratchDir(t), 'run'), scratchDir(t), sets), {
      asCommand: true,
      env: { NODE_EXTRA_CA_CERTS: CA },
    });
    t.is(trusted.code, 0, trusted.stderr);
    const untrusted = await runCli(remoteRunArgs(join(scratchDir(t), 'run'), scratchDir(t), sets), {
      asCommand: true,
      env: { NODE_EXTRA_CA_CERTS: '' },
    });
    t.is(untrusted.code, 1);
    t.regex(
      untrusted.stderr,
      /^rxtrain: E_FETCH\S*: https:\/\/127\.0\.0\.1:\d+\/MNIST\.tar\.gz: .*certificate/,
    );
  } finally {
    server.close();
  }
});
