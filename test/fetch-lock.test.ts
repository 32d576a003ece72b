/** Two runs fetching the same file at once download it once; abandoned locks are taken over. */
import { spawnSync } from 'node:child_process';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parseEvents } from '../src/pipeline/events.js';
import { acquireLock, readHolder } from '../src/util/fileLock.js';
import { FaultServer, serve } from './helpers/faultServer.js';
import { mnistSubset, notebookArchive, runCli } from './helpers/index.js';
import { assertCache, localReference, QUICK, remoteRunArgs, scratchDir } from './helpers/remoteRun.js';

test('two runs started together against a slow server: one download, both succeed', async (t) => {
  const archive = await notebookArchive(mnistSubset());
  const reference = await localReference(archive);
  // Most of a second for the whole archive, so the second run finds the first one downloading.
  const server = await FaultServer.start({
    '/MNIST.tar.gz': [serve(archive, { chunkBytes: 64 * 1024, chunkDelayMs: 40 })],
  });
  const cache = scratchDir(t);
  try {
    const runDirs = [join(scratchDir(t), 'a'), join(scratchDir(t), 'b')];
    const results = await Promise.all(
      runDirs.map((runDir) =>
        runCli(remoteRunArgs(runDir, cache, [...QUICK, `fetch.url=${server.url('/MNIST.tar.gz')}`])),
      ),
    );
    for (const r of results) t.is(r.code, 0, r.stderr);
    t.is(server.bodies('/MNIST.tar.gz').length, 1, 'downloaded once');
    const summaries = runDirs.map((d) => JSON.parse(readFileSync(join(d, 'summary.json'), 'utf8')));
    for (const s of summaries) t.is(s.weightsSha256, reference);
    const actions = runDirs.map((d) =>
      parseEvents(readFileSync(join(d, 'events.ndjson'), 'utf8'))
        .filter(
          (e) =>
            (e.type === 'cache' && e.stage === 'fetch') ||
            (e.type === 'warning' && e.code === 'W_FETCH_WAIT'),
        )
        .map((e) => (e.type === 'cache' ? e.action : 'wait')),
    );
    t.deepEqual(
      actions.map((a) => a.join(' ')).sort(),
      ['miss write', 'wait hit'],
      'one run downloaded, the other waited and read the cache',
    );
    assertCache(t, cache, archive);
  } finally {
    await server.close();
  }
});

test.serial('a lock left by a process that is gone is taken over at once', async (t) => {
  const dead = spawnSync(process.execPath, [
    '-e',
    'process.stdout.write(String(process.pid))',
  ]).stdout.toString();
  const path = join(scratchDir(t), 'x.lock');
  writeFileSync(path, JSON.stringify({ host: hostname(), pid: Number(dead), token: 'old' }));
  const started = performance.now();
  const lock = await acquireLock(path, { staleMs: 60_000, pollMs: 10 });
  t.true(performance.now() - started < 1000);
  t.is(readHolder(path)?.pid, process.pid);
  lock.release();
  t.is(readHolder(path), undefined);
});

test.serial(
  'a lock whose heartbeat stopped (another host) is taken over after staleMs; a live one is not',
  async (t) => {
    const path = join(scratchDir(t), 'y.lock');
    writeFileSync(path, JSON.stringify({ host: 'elsewhere', pid: 1, token: 'old' }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(path, old, old);
    const lock = await acquireLock(path, { staleMs: 60_000, pollMs: 10 });
    t.is(readHolder(path)?.token, lock.holder.token);

    // Held and heartbeating: a waiter with the same staleMs waits until it is released.
    let waited = false;
    const live = await acquireLock(join(scratchDir(t), 'z.lock'), { staleMs: 300, pollMs: 10 });
    const second = acquireLock(live.path, { staleMs: 300, pollMs: 10, onWait: () => (waited = true) });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    t.true(waited);
    t.is(readHolder(live.path)?.token, live.holder.token, 'still held after 3 × staleMs');
    live.release();
    const next = await second;
    t.is(readHolder(live.path)?.token, next.holder.token);
    next.release();
    lock.release();
  },
);

test.serial('a waiter gives up when its run is stopped', async (t) => {
  const path = join(scratchDir(t), 'w.lock');
  const held = await acquireLock(path, { staleMs: 60_000, pollMs: 10 });
  const stop = new AbortController();
  const waiting = acquireLock(path, { staleMs: 60_000, pollMs: 10, signal: stop.signal });
  stop.abort(new Error('stopped'));
  await t.throwsAsync(waiting, { message: 'stopped' });
  held.release();
});
