/** The data-stage cache: reuse on a rerun, never a corrupt or partial file, keys that notice change. */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { sourceFingerprint } from '../src/download/fingerprint.js';
import { fromArray } from '../src/flow/index.js';
import { configFromObject, loadConfig } from '../src/pipeline/config.js';
import { EventBus, type RxtrainEvent } from '../src/pipeline/events.js';
import type { Features, Message } from '../src/pipeline/messages.js';
import { runExperiment } from '../src/pipeline/run.js';
import { cachedFlow } from '../src/pipeline/stageCache.js';
import { builtinStages } from '../src/stages/index.js';
import { collect, MNIST_DIR, mnistSubset, ROOT, tempDir } from './helpers/index.js';
import { testPipeline } from './helpers/pipeline.js';

const root = tempDir();
test.after.always(() => rmSync(root, { recursive: true, force: true }));

let runs = 0;
/**
 * The default experiment, shortened, with its features standardised by statistics from the data:
 * work a cache file saves (plain IDX files alone are read directly: the cache is bypassed).
 */
async function run(
  cacheDir: string,
  overrides: string[] = [],
  options: { stageCache?: boolean; plain?: boolean } = {},
) {
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
    stages: builtinStages,
    overrides: ['sgd.steps=300', ...(options.plain ? [] : ['normalise.standardise=global']), ...overrides],
  });
  const events: RxtrainEvent[] = [];
  const summary = await runExperiment({
    config,
    runDir: join(root, `run-${runs++}`),
    cacheDir,
    onEvent: (e) => events.push(e),
    stageCache: options.stageCache,
  });
  const cache = events.filter((e) => e.type === 'cache').map((e) => e.action);
  const warnings = events.flatMap((e) => (e.type === 'warning' ? [e.code] : []));
  return { summary, events, cache, warnings };
}

const cacheFiles = (cacheDir: string) =>
  readdirSync(join(cacheDir, 'stages')).filter((f) => f.endsWith('.rxdata'));

test.serial('the second run replays the data stages from the cache', async (t) => {
  const cacheDir = join(root, 'cache-default');
  const first = await run(cacheDir);
  const second = await run(cacheDir);
  t.log(
    `data stages: first run ${first.summary.dataMs} ms (computed and cached), second ${second.summary.dataMs} ms (replayed)`,
  );
  t.deepEqual(first.cache, ['miss', 'write']);
  t.deepEqual(second.cache, ['hit']);
  t.is(first.summary.dataCache, 'miss');
  t.is(second.summary.dataCache, 'hit');
  t.like(
    second.events.find((e) => e.type === 'cache'),
    { stage: 'normalise', stages: ['fetch', 'untar', 'decodeIdx', 'normalise'] },
  );
  // The data stages did not run: no counters of theirs (the replay only moves the edge after the
  // last of them, which is reported), and they finish as cached.
  const dataStages = ['fetch', 'untar', 'decodeIdx', 'normalise'];
  const envelope = new Set(['type', 'stage', 'edge', 'time', 'elapsedMs', 'seq']);
  t.false(
    second.events.some(
      (e) =>
        e.type === 'stage-progress' &&
        dataStages.includes(e.stage) &&
        Object.keys(e).some((k) => !envelope.has(k)),
    ),
  );
  t.deepEqual(
    second.events.flatMap((e) => (e.type === 'stage-finished' && e.cached ? [e.stage] : [])),
    dataStages,
  );
  t.is(second.summary.weightsSha256, first.summary.weightsSha256);
  t.is(second.summary.test!.accuracy, first.summary.test!.accuracy);
  t.is(cacheFiles(cacheDir).length, 1);

  // Settings of a later stage do not touch the key; a data stage's do.
  t.deepEqual((await run(cacheDir, ['sgd.lr=0.05'])).cache, ['hit']);
  t.deepEqual((await run(cacheDir, ['normalise.scale=0.5'])).cache, ['miss', 'write']);
  t.is(cacheFiles(cacheDir).length, 2);
});

test.serial(
  'plain local IDX files are read directly: the cache is bypassed, its key still reported',
  async (t) => {
    const data = join(root, 'mnist-plain');
    cpSync(MNIST_DIR, data, { recursive: true });
    const cacheDir = join(root, 'cache-plain');
    const overrides = [`fetch.url=${data}`];
    const first = await run(cacheDir, overrides, { plain: true });
    const second = await run(cacheDir, overrides, { plain: true });
    const keys = (r: typeof first) =>
      r.events.flatMap((e) => (e.type === 'cache' && e.stage === 'normalise' ? [e.key] : []));
    t.deepEqual(first.cache, ['bypass'], 'a first run: the key once the data has passed');
    t.deepEqual(second.cache, ['bypass'], 'a rerun: the key at once, from the digest memo');
    t.regex(keys(first)[0]!, /^[0-9a-f]{64}$/);
    t.deepEqual(keys(second), keys(first));
    t.like(
      first.events.find((e) => e.type === 'cache'),
      {
        reason:
          'the data stages hand on views of local files stored plain: a cache file would be a second copy, read no faster',
      },
    );
    t.is(second.summary.dataCache, 'bypass');
    t.deepEqual(cacheFiles(cacheDir), [], 'no second copy of the data');
    t.is(second.summary.weightsSha256, first.summary.weightsSha256);
    // The key still follows the bytes: what a resume checks its data against.
    const labels = join(data, 't10k-labels-idx1-ubyte');
    const bytes = readFileSync(labels);
    bytes[8] = (bytes[8]! + 1) % 10;
    writeFileSync(labels, bytes);
    const changed = await run(cacheDir, overrides, { plain: true });
    t.deepEqual(changed.cache, ['bypass']);
    t.notDeepEqual(keys(changed), keys(first));
  },
);

test.serial('the same files gzipped are worth caching: computed and written, then replayed', async (t) => {
  const data = join(root, 'mnist-gz');
  mkdirSync(data);
  for (const [name, bytes] of Object.entries(mnistSubset(2000, 500)))
    writeFileSync(join(data, `${name}.gz`), gzipSync(bytes, { level: 1 }));
  const cacheDir = join(root, 'cache-gz');
  const overrides = [`fetch.url=${data}`, 'sgd.steps=50'];
  const first = await run(cacheDir, overrides, { plain: true });
  const second = await run(cacheDir, overrides, { plain: true });
  t.deepEqual(first.cache, ['miss', 'write']);
  t.deepEqual(second.cache, ['hit']);
  t.is(cacheFiles(cacheDir).length, 1);
  t.is(second.summary.weightsSha256, first.summary.weightsSha256);
});

for (const damage of ['bit-flipped', 'truncated'] as const) {
  test.serial(`a ${damage} cache file is never used: reported, removed and written again`, async (t) => {
    const cacheDir = join(root, `cache-${damage}`);
    const first = await run(cacheDir);
    const [name] = cacheFiles(cacheDir);
    const path = join(cacheDir, 'stages', name!);
    const bytes = readFileSync(path);
    if (damage === 'bit-flipped') {
      bytes[bytes.byteLength >> 1]! ^= 0x01;
      writeFileSync(path, bytes);
    } else writeFileSync(path, bytes.subarray(0, bytes.byteLength >> 1));
    const second = await run(cacheDir);
    t.deepEqual(second.cache, ['miss', 'write']);
    t.deepEqual(second.warnings, ['W_CACHE_CORRUPT']);
    t.is(second.summary.weightsSha256, first.summary.weightsSha256);
    t.deepEqual((await run(cacheDir)).cache, ['hit']);
  });
}

test.serial('a killed writer’s partial file is never used and is cleaned up', async (t) => {
  const cacheDir = join(root, 'cache-partial');
  const first = await run(cacheDir);
  const [name] = cacheFiles(cacheDir);
  const path = join(cacheDir, 'stages', name!);
  // What a writer killed half-way leaves: its temp file, and no cache file.
  const torn = join(cacheDir, 'stages', `.${name}.${2 ** 22 + 1}.0.tmp`);
  writeFileSync(torn, readFileSync(path).subarray(0, 1 << 20));
  rmSync(path);
  const second = await run(cacheDir);
  t.deepEqual(second.cache, ['miss', 'write']);
  t.false(readdirSync(join(cacheDir, 'stages')).some((f) => f.endsWith('.tmp')));
  t.is(second.summary.weightsSha256, first.summary.weightsSha256);
});

test.serial('a bypassed source cleans up what a killed run left mid-write of the digest memo', async (t) => {
  const data = join(root, 'mnist-plain-torn');
  cpSync(MNIST_DIR, data, { recursive: true });
  const cacheDir = join(root, 'cache-plain-torn');
  const overrides = [`fetch.url=${data}`, 'sgd.steps=20'];
  await run(cacheDir, overrides, { plain: true });
  // A run killed while writing the memo: its temp file, named for a process that is gone.
  const torn = join(cacheDir, 'stages', `.fingerprints.json.${2 ** 22 + 1}.0.tmp`);
  writeFileSync(torn, '{"half":');
  const again = await run(cacheDir, overrides, { plain: true });
  t.deepEqual(again.cache, ['bypass']);
  t.false(existsSync(torn));
});

test.serial(
  'statistics from the data: a run without the cache, one writing it and a replay train the same weights',
  async (t) => {
    const cacheDir = join(root, 'cache-standardise');
    const overrides = ['normalise.standardise=per-feature'];
    const uncached = await run(cacheDir, overrides, { stageCache: false });
    t.deepEqual(uncached.cache, []);
    const cold = await run(cacheDir, overrides);
    t.deepEqual(cold.cache, ['miss', 'write']);
    const replayed = await run(cacheDir, overrides);
    t.deepEqual(replayed.cache, ['hit']);
    t.is(cold.summary.weightsSha256, uncached.summary.weightsSha256);
    t.is(replayed.summary.weightsSha256, uncached.summary.weightsSha256);
  },
);

test.serial(
  'the features message is cached like any other: replayed once, frozen, in its place',
  async (t) => {
    const config = await configFromObject(
      {
        name: 'features-cache',
        stages: [
          { type: 'fetch', url: MNIST_DIR },
          { type: 'untar' },
          { type: 'decodeIdx' },
          { type: 'normalise', standardise: 'per-feature' },
        ],
      },
      { stages: builtinStages },
    );
    const stageCacheDir = join(root, 'cache-features');
    const pass = async () => {
      const { pipeline, events } = testPipeline(config, { stageCacheDir });
      const items = await collect<Message>(pipeline.flow);
      const action = events.flatMap((e) => (e.type === 'cache' ? [e.action] : []))[0];
      const features = items.filter((m): m is Features => m.kind === 'features');
      t.is(features.length, 1, `${action}: one features message`);
      const [message] = features;
      t.true(Object.isFrozen(message) && Object.isFrozen(message!.transform), `${action}: frozen`);
      // Statistics of the training split are final at its end: sent just before its split-end.
      const at = items.indexOf(message!);
      t.like(items[at + 1], { kind: 'split-end', split: 'train' }, action);
      return { action, at, count: items.length, transform: message!.transform };
    };
    const cold = await pass();
    const replay = await pass();
    t.is(cold.action, 'miss');
    t.is(replay.action, 'hit');
    t.is(replay.at, cold.at);
    t.is(replay.count, cold.count);
    t.deepEqual(replay.transform, cold.transform);
    t.true(
      cold.transform.shift!.some((v) => v !== 0),
      'standardised: a shift from the data',
    );
  },
);

test.serial('a changed source file changes the key; an unchanged one is not hashed again', async (t) => {
  const data = join(root, 'mnist-copy');
  cpSync(MNIST_DIR, data, { recursive: true });
  const cacheDir = join(root, 'cache-source');
  const overrides = [`fetch.url=${data}`];
  t.deepEqual((await run(cacheDir, overrides)).cache, ['miss', 'write']);
  const memo = JSON.parse(readFileSync(join(cacheDir, 'stages', 'fingerprints.json'), 'utf8'));
  t.deepEqual(
    Object.keys(memo.files).sort(),
    readdirSync(data)
      .map((f) => join(data, f))
      .sort(),
  );
  t.deepEqual((await run(cacheDir, overrides)).cache, ['hit']);
  // Relabel one test example (still a valid label): different bytes, a different key.
  const labels = join(data, 't10k-labels-idx1-ubyte');
  const bytes = readFileSync(labels);
  bytes[8] = (bytes[8]! + 1) % 10;
  writeFileSync(labels, bytes);
  t.deepEqual((await run(cacheDir, overrides)).cache, ['miss', 'write']);
});

test('an HTTP source has no fingerprint unless the config states its checksum; then the cache is bypassed', async (t) => {
  const ctx = { baseDir: root, cacheDir: root };
  t.is(await sourceFingerprint({ mirrors: ['http://127.0.0.1:9/MNIST.tar.gz'] }, ctx), undefined);
  t.is(await sourceFingerprint({ url: 'http://127.0.0.1:9/MNIST.tar.gz' }, ctx), undefined);
  t.regex((await sourceFingerprint({ url: MNIST_DIR, mirrors: [MNIST_DIR] }, ctx))!, /^local:[0-9a-f]{64}$/);
  t.is(await sourceFingerprint({ url: MNIST_DIR, mirrors: [join(root, 'elsewhere')] }, ctx), undefined);
  t.is(
    await sourceFingerprint({ mirrors: ['http://127.0.0.1:9/MNIST.tar.gz'], sha256: 'AB12' }, ctx),
    'stated:sha256:ab12',
  );
  t.is(
    await sourceFingerprint(
      { url: 'http://127.0.0.1:9/', files: ['a', 'b'], md5: { b: 'FF', a: 'EE' } },
      ctx,
    ),
    'stated:md5:a=ee,b=ff',
  );
  const events = new EventBus();
  const seen: RxtrainEvent[] = [];
  events.on((e) => seen.push(e));
  const messages: Message[] = [{ kind: 'split-end', split: 'test', count: 0 }];
  const out = await collect(
    cachedFlow(fromArray(messages), {
      dir: join(root, 'unused'),
      stages: [{ id: 'fetch', type: 'fetch', settings: {} }],
      fingerprint: async () => undefined,
      events,
    }),
  );
  t.deepEqual(out, messages);
  t.like(seen[0], { type: 'cache', action: 'bypass' });
});
