/**
 * Backpressure end to end: every edge of the default pipeline stays within its capacity while a
 * slow consumer holds up a fast source, an HTTP body is not read while nobody asks for data, and
 * edge depths reach the progress events. Counting happens outside the edges (`runtime.probe`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { serveBody } from '../bench/stream-server.js';
import { consume, Demand } from '../src/flow/index.js';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents, type RxtrainEvent } from '../src/pipeline/events.js';
import type { Message } from '../src/pipeline/messages.js';
import { LOCAL_CHUNK_BYTES } from '../src/stages/fetch.js';
import { builtinStages } from '../src/stages/index.js';
import { makeTar, mnistFiles, notebookArchive, ROOT, runCli, tempDir } from './helpers/index.js';
import { testPipeline } from './helpers/pipeline.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Per edge: items in, items out, the largest lead seen, and every moment the lead broke the capacity. */
interface EdgeCount {
  in: number;
  out: number;
  maxLead: number;
  overruns: number;
}

/** Build a pipeline from a config file with a probe on every edge. */
async function probedPipeline(file: string, overrides: string[]) {
  const config = await loadConfig(file, { stages: builtinStages, overrides });
  const counts = new Map<string, EdgeCount>();
  const capacityOf = new Map(config.stages.map((s) => [s.id, s.capacity.items]));
  let lastMove = performance.now();
  const { pipeline, events } = testPipeline(config, {
    sliceMs: 2,
    probe: (stage, event) => {
      const c = counts.get(stage) ?? { in: 0, out: 0, maxLead: 0, overruns: 0 };
      counts.set(stage, c);
      c[event]++;
      lastMove = performance.now();
      const lead = c.in - c.out;
      if (lead > c.maxLead) c.maxLead = lead;
      if (lead > capacityOf.get(stage)!) c.overruns++;
    },
  });
  /**
   * The slowest consumer there is: wait until no item has moved on any edge for `ms`, so every
   * stage upstream is either blocked by a full edge or waiting for input. Adapts to a loaded
   * machine, where a fixed delay might be shorter than an evaluation.
   */
  const stillFor = async (ms: number) => {
    while (performance.now() - lastMove < ms) await sleep(ms / 4);
  };
  return { config, pipeline, counts, events, stillFor };
}

/**
 * The default pipeline, shortened, with a different capacity on every edge (one in bytes too). The
 * `buffer` sampler reads only as fast as SGD trains, so the data edges meet a consumer slower than
 * the disk (a permutation sampler would swallow the whole split as fast as it is decoded).
 */
const SHORT_DEFAULT = [
  'shuffle.mode=buffer',
  'shuffle.bufferSize=2000',
  'sgd.steps=100',
  'evaluate.every=5',
  'fetch.capacity={items: 2}',
  'untar.capacity={items: 3, bytes: 100000}',
  'decodeIdx.capacity={items: 4}',
  'normalise.capacity={items: 1}',
  'shuffle.capacity={items: 5}',
  'sgd.capacity={items: 2}',
  'evaluate.capacity={items: 3}',
];

test.serial(
  'every edge of the default pipeline: the producer is never more than its capacity ahead (slow consumer)',
  async (t) => {
    const { config, pipeline, counts, events, stillFor } = await probedPipeline(
      join(ROOT, 'config/mnist-logreg.yaml'),
      SHORT_DEFAULT,
    );
    // The run's final consumer, made slow: it takes each item only once the pipeline has stood
    // still for 40 ms. While it waits the event loop is free and the source is fast: every edge
    // upstream fills, then holds.
    const kinds: string[] = [];
    await consume(pipeline.flow, async (m: Message) => {
      kinds.push(m.kind);
      await stillFor(40);
    }).done;
    t.is(kinds.filter((k) => k === 'snapshot').length, 21, 'steps 0, 5, …, 95, and the final one at 100');

    t.deepEqual(
      [...counts.keys()],
      config.stages.map((s) => s.id),
      'every edge was probed',
    );
    for (const stage of config.stages) {
      const c = counts.get(stage.id)!;
      const handle = pipeline.stages.find((h) => h.id === stage.id)!;
      t.is(c.overruns, 0, `${stage.id}: lead above capacity ${stage.capacity.items}`);
      t.true(c.maxLead <= stage.capacity.items, `${stage.id}: max lead ${c.maxLead}`);
      t.true(c.in > 0, `${stage.id} emitted`);
      // The edge's own statistics agree with the independent count.
      t.is(handle.edge.emitted, c.in, `${stage.id}: emitted`);
      t.true(handle.edge.maxDepth <= stage.capacity.items);
      // A byte-limited edge asks for one item while under its limit: it can pass it by one item,
      // here at most one chunk of a local file.
      if (stage.capacity.bytes !== undefined)
        t.true(
          handle.edge.maxBytes <= stage.capacity.bytes + LOCAL_CHUNK_BYTES,
          `${stage.id}: ${handle.edge.maxBytes} bytes`,
        );
    }
    // Each producer really was faster than its consumer: every edge filled to its bound (the
    // untar edge to its byte bound, which one 1 MiB chunk of a local file passes at once).
    const leads = Object.fromEntries([...counts].map(([id, c]) => [id, c.maxLead]));
    t.log('max lead per edge', leads);
    for (const stage of config.stages) {
      if (stage.id === 'untar')
        t.true(pipeline.stages[1]!.edge.maxBytes >= 100_000, 'untar filled its bytes');
      else t.is(leads[stage.id], stage.capacity.items, `${stage.id} filled its edge`);
    }

    // Sampled progress events carry each edge's depth and capacity.
    pipeline.sampleProgress();
    const progress = events.filter((e) => e.type === 'stage-progress') as Extract<
      RxtrainEvent,
      { type: 'stage-progress' }
    >[];
    for (const stage of config.stages) {
      const reports = progress.filter((e) => e.stage === stage.id && e.edge);
      t.true(reports.length > 0, `${stage.id} reported its edge`);
      for (const r of reports) {
        t.is(r.edge!.capacity, stage.capacity.items);
        t.true(r.edge!.depth <= stage.capacity.items);
      }
    }
    const untarReport = progress.find((e) => e.stage === 'untar' && e.edge)!;
    t.is(untarReport.edge!.capacityBytes, 100000);
    t.regex(pipeline.summary(), /^fetch\[2\] -> untar\[3, 100000 B\] -> decodeIdx\[4\] -> /);
  },
);

test.serial(
  'the probe has teeth: with capacity limits switched off, the slow consumer falls behind',
  async (t) => {
    // Buffer sampling: an endless permutation sampler facing an unbounded edge would spin forever.
    const { pipeline, counts, stillFor } = await probedPipeline(join(ROOT, 'config/mnist-logreg.yaml'), [
      'shuffle.mode=buffer',
      'shuffle.bufferSize=2000',
      'sgd.steps=100',
      'evaluate.every=5',
      'capacity={items: 4096}', // the largest allowed: far more than the 20 snapshots
    ]);
    await consume(pipeline.flow, () => stillFor(40)).done;
    const lead = counts.get('evaluate')!.maxLead;
    t.true(lead > 8, `the evaluator ran ${lead} snapshots ahead of the consumer`);
  },
);

/** MNIST as an uncompressed tar, labels before images (55 MB). */
async function mnistTar(): Promise<Buffer> {
  const f = mnistFiles();
  return makeTar(
    [
      't10k-labels-idx1-ubyte',
      't10k-images-idx3-ubyte',
      'train-labels-idx1-ubyte',
      'train-images-idx3-ubyte',
    ].map((name) => ({ name: `mnist/${name}`, data: f[name] })),
    { gzip: false },
  );
}

test.serial(
  'an HTTP source is not read while nobody asks: the server stalls, then finishes on demand',
  async (t) => {
    const body = await mnistTar();
    const server = await serveBody(body);
    try {
      const dir = tempDir();
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'http.yaml');
      writeFileSync(
        file,
        `stages:\n  - type: fetch\n    url: ${server.url}/mnist.tar\n  - type: untar\n  - type: decodeIdx\n`,
      );
      const { pipeline } = await probedPipeline(file, []);
      const demand = new Demand();
      let examples = 0;
      let done = false;
      let failure: unknown;
      pipeline.flow(demand.requests).subscribe({
        next: (m) => {
          if (m.kind === 'examples') examples += m.count;
        },
        error: (e) => {
          failure = e;
        },
        complete: () => {
          done = true;
        },
      });
      // Nobody downstream asks: the edges fill, then fetch stops reading the socket. Counted, not
      // timed: wait (bounded) until the edge after fetch is full and the server has sent nothing
      // for ten looks in a row, however slow the machine.
      const fetchEdge = pipeline.stages[0]!.edge;
      let quiet = 0;
      let last = -1;
      for (let waited = 0; quiet < 10; waited += 50) {
        if (waited > 60_000) throw new Error('the server never stalled');
        await sleep(50);
        const written = server.stats.written;
        quiet = written === last && fetchEdge.depth === 8 ? quiet + 1 : 0;
        last = written;
      }
      const stalled = server.stats.written;
      await sleep(300);
      t.is(server.stats.written, stalled, 'no more bytes leave the server while there is no demand');
      t.true(stalled < 16 * 1024 * 1024, `${stalled} of ${body.byteLength} bytes sent with no demand`);
      t.is(fetchEdge.depth, 8, 'the edge after fetch is full');
      demand.request(Number.POSITIVE_INFINITY);
      while (!done && !failure) await sleep(20);
      t.falsy(failure);
      t.is(examples, 70_000);
      t.is(server.stats.written, body.byteLength);
    } finally {
      server.close();
    }
  },
);

test('capacities come from the config: a stage refines the top-level default, bad values are named', async (t) => {
  const config = await loadConfig('inline.yaml', {
    stages: builtinStages,
    text: [
      'capacity: {items: 16}',
      'stages:',
      '  - type: fetch',
      '    capacity: {bytes: 1048576}',
      '  - type: untar',
      '  - type: decodeIdx',
      '    capacity: {items: 2}',
    ].join('\n'),
  });
  t.deepEqual(
    config.stages.map((s) => s.capacity),
    [{ items: 16, bytes: 1048576 }, { items: 16 }, { items: 2 }],
  );
  const error = await t.throwsAsync(
    loadConfig('inline.yaml', {
      stages: builtinStages,
      text: 'stages:\n  - type: fetch\n    capacity: {items: 0, bites: 5}\n',
    }),
  );
  t.regex(error!.message, /stages\[0\]\.capacity\.items/);
  t.regex(error!.message, /stages\[0\]\.capacity\.bites: unknown key "bites" \(did you mean "bytes"\?\)/);
});

test.serial(
  'streaming overlap: with buffer sampling and one pass, SGD steps happen while the archive is still arriving',
  async (t) => {
    const archive = await notebookArchive();
    // 13 MB at 4 MB/s: about three seconds of download.
    const server = await serveBody(archive, { bytesPerSecond: 4_000_000 });
    try {
      const dir = tempDir();
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const result = await runCli(
        [
          'run',
          'config/mnist-remote.yaml',
          '--set',
          `fetch.url=${server.url}/MNIST.tar.gz`,
          '--set',
          'shuffle.mode=buffer',
          '--set',
          'sgd.epochs=1',
          '--set',
          'sgd.logEvery=10',
          '--set',
          'progressIntervalMs=50',
          '--run-dir',
          join(dir, 'run'),
          '--cache',
          join(dir, 'cache'),
          '--quiet',
        ],
        { timeoutMs: 60_000 },
      );
      t.is(result.code, 0, result.stderr);
      const events = parseEvents(readFileSync(join(dir, 'run', 'events.ndjson'), 'utf8'));
      const fetchDone = events.find((e) => e.type === 'stage-finished' && e.stage === 'fetch')!;
      const trains = events.filter((e) => e.type === 'train');
      const firstTrain = trains[0]!;
      const received = (e: RxtrainEvent) =>
        e.type === 'stage-progress' && e.stage === 'fetch' && typeof e['bytes'] === 'number'
          ? (e['bytes'] as number)
          : undefined;
      // Bytes received as of the first SGD step: the last fetch progress event before it.
      const before = events.filter((e) => e.seq < firstTrain.seq && received(e) !== undefined);
      const bytesAtFirstStep = received(before.at(-1)!)!;
      const duringDownload = trains.filter((e) => e.seq < fetchDone.seq);
      t.log(
        `first train event at ${firstTrain.elapsedMs} ms with ${bytesAtFirstStep} of ${archive.byteLength} bytes received; fetch finished at ${fetchDone.elapsedMs} ms; ${duringDownload.length} of ${trains.length} train events before it`,
      );
      t.true(firstTrain.seq < fetchDone.seq, 'an SGD step is logged before fetch has finished');
      t.true(firstTrain.elapsedMs < fetchDone.elapsedMs);
      t.true(bytesAtFirstStep < archive.byteLength * 0.9, `${bytesAtFirstStep} bytes in at the first step`);
      t.true(duringDownload.length >= 3, 'training keeps going while bytes arrive');
      // Bytes keep arriving after training has started.
      const after = events.filter((e) => e.seq > firstTrain.seq && (received(e) ?? 0) > bytesAtFirstStep);
      t.true(after.length > 0);
      // The test split (ahead of train-images in this archive) reached the evaluator on the way.
      const summary = JSON.parse(readFileSync(join(dir, 'run', 'summary.json'), 'utf8'));
      t.is(summary.status, 'completed');
      t.is(summary.epochs, 1);
      t.true(summary.test.accuracy > 0.85, `test accuracy ${summary.test.accuracy}`);
      t.is(server.stats.requests <= 2, true, 'at most the one download (and a cancelled second pass)');
    } finally {
      server.close();
    }
  },
);
