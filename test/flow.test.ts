/**
 * The Flow primitives on their own: demand is honoured, buffers stay within their capacity,
 * teardown reaches the producer, errors arrive once. Each test counts what the producer emitted
 * and what the consumer took, outside the code under test.
 */
import { createReadStream, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { Observable, Subject } from 'rxjs';
import {
  beforeComplete,
  concatFlows,
  consume,
  deferFlow,
  edge,
  edgeStats,
  type Flow,
  fromArray,
  fromPush,
  fromReadable,
  mapFlow,
  Outlet,
  transform,
} from '../src/flow/index.js';
import { RxtrainError } from '../src/util/errors.js';
import { Prng } from '../src/util/random.js';
import { collect, subscribeManually, tempDir } from './helpers/index.js';

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** A source of 0…n−1 under demand that records what it emitted, how often it was asked and whether it was torn down. */
function countingSource(n: number) {
  const log = { emitted: 0, requests: [] as number[], subscribed: 0, tornDown: 0 };
  const flow: Flow<number> = (requests) =>
    new Observable<number>((subscriber) => {
      log.subscribed++;
      let i = 0;
      const outlet = new Outlet<number>(subscriber, () => {
        while (outlet.wanted > 0 && i < n) {
          log.emitted++;
          outlet.push(i++);
        }
        if (i === n) subscriber.complete();
      });
      const sub = requests.subscribe((k) => {
        log.requests.push(k);
        outlet.add(k);
      });
      return () => {
        log.tornDown++;
        sub.unsubscribe();
      };
    });
  return { flow, log };
}

/** A source that ignores demand: every request gets `burst` items. */
function greedySource(burst: number): Flow<number> {
  return (requests) =>
    new Observable<number>((subscriber) =>
      requests.subscribe(() => {
        for (let i = 0; i < burst; i++) subscriber.next(i);
      }),
    );
}

// ---- transform ----

test('transform asks for one input at a time and only while downstream wants output', (t) => {
  const source = countingSource(10);
  const tripled = transform<number, number>(source.flow, () => ({
    next(item, out) {
      out.push(item * 3);
      out.push(item * 3 + 1);
      out.push(item * 3 + 2);
    },
  }));
  const sink = subscribeManually(tripled);
  t.is(source.log.emitted, 0, 'nothing is read before demand');
  sink.demand.request(1);
  t.deepEqual(sink.items, [0]);
  t.is(source.log.emitted, 1);
  sink.demand.request(2);
  t.deepEqual(sink.items, [0, 1, 2]);
  t.is(source.log.emitted, 1, 'the queued outputs of one input are delivered before more input is read');
  sink.demand.request(4);
  t.deepEqual(sink.items, [0, 1, 2, 3, 4, 5, 6]);
  t.is(source.log.emitted, 3);
  t.deepEqual(source.log.requests, [1, 1, 1], 'one input requested at a time');
  sink.demand.request(100);
  t.is(sink.items.length, 30);
  t.true(sink.completed);
});

test('transform holds input while a handler promise is pending, and pull() produces without input', async (t) => {
  const source = countingSource(3);
  let release!: () => void;
  const stage = transform<number, string>(source.flow, () => {
    let extra = 2;
    return {
      next(item, out) {
        out.push(`in${item}`);
        if (item === 0) return new Promise<void>((resolve) => (release = resolve));
      },
      pull(out) {
        if (extra === 0) return false;
        out.push(`pulled${extra--}`);
        return true;
      },
      complete(out) {
        out.push('done');
      },
    };
  });
  const sink = subscribeManually(stage);
  sink.demand.request(10);
  // pull() is asked first; once it has nothing, one input is read, whose promise then holds the rest.
  t.deepEqual(sink.items, ['pulled2', 'pulled1', 'in0']);
  t.is(source.log.emitted, 1);
  await tick();
  t.is(source.log.emitted, 1, 'no input while the promise is pending');
  release();
  await tick();
  t.deepEqual(sink.items, ['pulled2', 'pulled1', 'in0', 'in1', 'in2', 'done']);
  t.true(sink.completed);
});

test('transform: a throwing handler errors downstream once, tears down itself and upstream', (t) => {
  const source = countingSource(10);
  let teardowns = 0;
  const stage = transform<number, number>(source.flow, () => ({
    next(item, out) {
      if (item === 2) throw new RxtrainError('E_DATA', 'bad item 2');
      out.push(item);
    },
    teardown() {
      teardowns++;
    },
  }));
  const sink = subscribeManually(stage);
  sink.demand.request(10);
  t.deepEqual(sink.items, [0, 1]);
  t.is((sink.error as RxtrainError).code, 'E_DATA');
  t.is(teardowns, 1);
  t.is(source.log.tornDown, 1);
  t.is(source.log.emitted, 3, 'nothing read after the failure');
});

test('transform: unsubscribing downstream tears down the handler and the source', (t) => {
  const source = countingSource(1000);
  let teardowns = 0;
  const stage = transform<number, number>(source.flow, () => ({
    next(item, out) {
      out.push(item);
    },
    teardown() {
      teardowns++;
    },
  }));
  const sink = subscribeManually(stage);
  sink.demand.request(5);
  sink.subscription.unsubscribe();
  sink.demand.request(5);
  t.is(sink.items.length, 5);
  t.is(teardowns, 1);
  t.is(source.log.tornDown, 1);
  t.is(source.log.emitted, 5);
});

test('transform: an upstream that emits without being asked is a protocol error', (t) => {
  const stage = transform<number, number>(greedySource(3), () => ({
    next(item, out) {
      out.push(item);
    },
  }));
  const sink = subscribeManually(stage);
  sink.demand.request(1);
  t.is((sink.error as RxtrainError).code, 'E_PROTOCOL');
});

test('Outlet: pushing past demand is a protocol error', (t) => {
  const flow: Flow<number> = () =>
    new Observable<number>((subscriber) => {
      const outlet = new Outlet<number>(subscriber, () => {});
      outlet.push(1);
    });
  const sink = subscribeManually(flow);
  t.is((sink.error as RxtrainError).code, 'E_PROTOCOL');
  t.deepEqual(sink.items, []);
});

test('transform: a long synchronous run does not grow the stack', async (t) => {
  const n = 200_000;
  const items = await collect(
    transform<number, number>(fromArray(Array.from({ length: n }, (_, i) => i)), () => ({
      next(item, out) {
        if (item % 2 === 0) out.push(item);
      },
    })),
  );
  t.is(items.length, n / 2);
});

// ---- mapFlow ----

test('mapFlow passes demand straight through and errors when the function throws', (t) => {
  const source = countingSource(10);
  const sink = subscribeManually(
    mapFlow(source.flow, (x) => {
      if (x === 3) throw new Error('no 3');
      return x * 10;
    }),
  );
  sink.demand.request(2);
  t.deepEqual(sink.items, [0, 10]);
  t.is(source.log.emitted, 2);
  sink.demand.request(5);
  t.deepEqual(sink.items, [0, 10, 20]);
  t.is((sink.error as Error).message, 'no 3');
  t.is(source.log.tornDown, 1);
});

// ---- edge ----

test('edge: the producer is never more than the item capacity ahead of the consumer, under random demand', (t) => {
  for (const capacity of [1, 3, 8]) {
    const source = countingSource(500);
    const stats = edgeStats();
    const sink = subscribeManually(edge(source.flow, { items: capacity }, stats));
    const rng = new Prng(capacity);
    let maxLead = 0;
    t.is(source.log.emitted, capacity, 'fills up to its capacity before any demand');
    while (!sink.completed) {
      sink.demand.request(rng.int(5));
      const lead = source.log.emitted - sink.items.length;
      maxLead = Math.max(maxLead, lead);
      t.true(lead <= capacity, `lead ${lead} > capacity ${capacity}`);
      t.is(stats.depth, lead);
    }
    t.is(maxLead, capacity, 'the fast source does reach the bound');
    t.deepEqual(
      sink.items,
      Array.from({ length: 500 }, (_, i) => i),
    );
    t.is(stats.emitted, 500);
    t.is(stats.consumed, 500);
    t.is(stats.maxDepth, capacity);
  }
});

test('edge: a byte capacity stops asking once the buffered bytes reach it', (t) => {
  // Items of 100 bytes; 250 bytes of room: the edge asks for a third item only while under 250.
  const chunks = Array.from({ length: 20 }, (_, i) => new Uint8Array(100).fill(i));
  let emitted = 0;
  const source = mapFlow(fromArray(chunks), (c) => {
    emitted++;
    return c;
  });
  const stats = edgeStats();
  const sink = subscribeManually(edge(source, { items: 100, bytes: 250 }, stats));
  t.is(emitted, 3, '0, 100, 200 bytes held before each request: the third request is the last');
  t.is(stats.bytes, 300);
  t.is(stats.maxBytes, 300, 'over the limit by at most one item');
  sink.demand.request(1);
  t.is(emitted, 4, 'one taken leaves 200 bytes, under the limit: one more is asked for');
  t.is(stats.bytes, 300);
  sink.demand.request(20);
  t.true(sink.completed);
  t.is(sink.items.length, 20);
  t.true(stats.maxBytes <= 250 + 100);
  t.is(stats.bytes, 0);
});

test('edge: an upstream emitting past what the edge asked for is a protocol error', (t) => {
  const sink = subscribeManually(edge(greedySource(5), { items: 2 }));
  t.is((sink.error as RxtrainError).code, 'E_PROTOCOL');
});

test('edge: unsubscribing tears down upstream and takes the held items out of the depth', (t) => {
  const source = countingSource(100);
  const stats = edgeStats();
  const sink = subscribeManually(edge(source.flow, { items: 4 }, stats));
  sink.demand.request(1);
  t.is(stats.depth, 4);
  sink.subscription.unsubscribe();
  t.is(source.log.tornDown, 1);
  t.is(stats.depth, 0);
  t.is(stats.bytes, 0);
});

test('edge: delivers what it holds, then completes; an upstream error is passed on', async (t) => {
  t.deepEqual(await collect(edge(fromArray([1, 2, 3]), { items: 2 })), [1, 2, 3]);
  const failing: Flow<number> = () =>
    new Observable<number>((subscriber) => subscriber.error(new RxtrainError('E_IO', 'disk gone')));
  const error = await t.throwsAsync(collect(edge(failing, { items: 2 })));
  t.is((error as RxtrainError).code, 'E_IO');
});

test('edge: a huge capacity costs nothing up front (capacity limits switched off)', (t) => {
  const source = countingSource(1000);
  const sink = subscribeManually(edge(source.flow, { items: 1e12 }));
  t.is(source.log.emitted, 1000, 'without a bound the producer runs to the end');
  sink.demand.request(1000);
  t.true(sink.completed);
});

// ---- beforeComplete ----

test('beforeComplete: the last step runs before completion, which waits for its promise; a rejection is the error', async (t) => {
  const order: string[] = [];
  const sync = subscribeManually(
    beforeComplete(fromArray([1, 2]), () => {
      order.push('last');
    }),
  );
  sync.demand.request(5);
  t.deepEqual(sync.items, [1, 2]);
  t.true(sync.completed, 'at once when it returns nothing');
  t.deepEqual(order, ['last']);

  let release!: () => void;
  const later = subscribeManually(
    beforeComplete(fromArray([1]), () => new Promise<void>((r) => (release = r))),
  );
  later.demand.request(5);
  t.false(later.completed, 'not before its promise settles');
  release();
  await new Promise((r) => setImmediate(r));
  t.true(later.completed);

  const failing = subscribeManually(
    beforeComplete(fromArray([1]), async () => {
      throw new RxtrainError('E_IO', 'could not finish');
    }),
  );
  failing.demand.request(5);
  await new Promise((r) => setImmediate(r));
  t.false(failing.completed);
  t.is((failing.error as Error).message, 'could not finish');
});

// ---- concatFlows ----

test('concatFlows: in order, unmet demand carries over, each flow asked only for what is left', (t) => {
  const a = countingSource(3);
  const b = countingSource(4);
  const sink = subscribeManually(concatFlows([a.flow, b.flow]));
  t.is(b.log.subscribed, 0, 'the second flow is not subscribed while the first runs');
  sink.demand.request(5);
  t.deepEqual(sink.items, [0, 1, 2, 0, 1]);
  t.deepEqual(b.log.requests, [2]);
  t.is(b.log.emitted, 2);
  sink.demand.request(10);
  t.deepEqual(sink.items, [0, 1, 2, 0, 1, 2, 3]);
  t.true(sink.completed);
});

test('concatFlows reads a generator lazily, survives 10,000 empty flows, and returns it on unsubscribe', (t) => {
  let yielded = 0;
  let returned = false;
  function* passes(): Generator<Flow<number>> {
    try {
      for (let i = 0; i < 10_000; i++) {
        yielded++;
        yield fromArray<number>([]);
      }
      for (;;) {
        yielded++;
        yield fromArray([1, 2]);
      }
    } finally {
      returned = true;
    }
  }
  const sink = subscribeManually(concatFlows(passes()));
  t.is(yielded, 10_001, 'empty flows are skipped in a loop; the first with items waits for demand');
  sink.demand.request(5);
  t.deepEqual(sink.items, [1, 2, 1, 2, 1]);
  t.is(yielded, 10_003);
  sink.subscription.unsubscribe();
  t.true(returned);
});

test('concatFlows: an error thrown by the iterable reaches the subscriber', (t) => {
  function* broken(): Generator<Flow<number>> {
    yield fromArray([1]);
    throw new RxtrainError('E_DATA', 'no next pass');
  }
  const sink = subscribeManually(concatFlows(broken()));
  sink.demand.request(3);
  t.deepEqual(sink.items, [1]);
  t.is((sink.error as RxtrainError).code, 'E_DATA');
});

test('concatFlows readAhead: the next flow starts with the current one, asked for one item held for its turn', (t) => {
  const a = countingSource(3);
  const b = countingSource(4);
  const c = countingSource(2);
  const sink = subscribeManually(concatFlows([a.flow, b.flow, c.flow], { readAhead: 1 }));
  t.is(b.log.subscribed, 1, 'the second flow is subscribed at once');
  t.deepEqual(b.log.requests, [1], 'and asked for one item');
  t.is(c.log.subscribed, 0, 'one flow ahead, no more');
  t.deepEqual(sink.items, [], 'nothing goes out before it is asked for');
  sink.demand.request(2);
  t.deepEqual(sink.items, [0, 1]);
  sink.demand.request(3);
  t.deepEqual(sink.items, [0, 1, 2, 0, 1], 'the held item first, then what b is asked for');
  t.deepEqual(b.log.requests, [1, 1], 'b is asked only for what is wanted beyond the held item');
  t.is(c.log.subscribed, 1, 'c starts once b is the current flow');
  t.deepEqual(c.log.requests, [1]);
  sink.demand.request(100);
  t.deepEqual(sink.items, [0, 1, 2, 0, 1, 2, 3, 0, 1]);
  t.true(sink.completed);
  t.is(a.log.emitted + b.log.emitted + c.log.emitted, 9, 'nothing was read twice or dropped');
});

test('concatFlows readAhead: 2 keeps two flows started ahead as the current one moves on', (t) => {
  const sources = [1, 2, 3, 4].map(() => countingSource(2));
  const sink = subscribeManually(
    concatFlows(
      sources.map((s) => s.flow),
      { readAhead: 2 },
    ),
  );
  t.deepEqual(
    sources.map((s) => s.log.subscribed),
    [1, 1, 1, 0],
  );
  sink.demand.request(3);
  t.deepEqual(sink.items, [0, 1, 0]);
  t.deepEqual(
    sources.map((s) => s.log.subscribed),
    [1, 1, 1, 1],
    'the fourth starts when the second becomes current',
  );
  sink.demand.request(10);
  t.deepEqual(sink.items, [0, 1, 0, 1, 0, 1, 0, 1]);
  t.true(sink.completed);
});

test('concatFlows readAhead: an error or end of the flow ahead waits for its turn', (t) => {
  const failing: Flow<number> = () =>
    new Observable<number>((subscriber) =>
      subscriber.error(new RxtrainError('E_IO', 'second file unreadable')),
    );
  const a = countingSource(2);
  const sink = subscribeManually(concatFlows([a.flow, fromArray<number>([]), failing], { readAhead: 1 }));
  t.is(sink.error, undefined, 'the empty flow ahead ended; nothing is said yet');
  sink.demand.request(1);
  t.deepEqual(sink.items, [0]);
  t.is(sink.error, undefined, 'the failing flow is not even started while the first runs');
  sink.demand.request(5);
  t.deepEqual(sink.items, [0, 1]);
  t.is((sink.error as RxtrainError).message, 'second file unreadable', 'its error comes in its turn');
});

test('concatFlows readAhead: unsubscribing tears down the flow ahead too', (t) => {
  const a = countingSource(100);
  const b = countingSource(100);
  const sink = subscribeManually(concatFlows([a.flow, b.flow], { readAhead: 1 }));
  sink.demand.request(2);
  sink.subscription.unsubscribe();
  t.is(a.log.tornDown, 1);
  t.is(b.log.tornDown, 1);
  t.is(b.log.emitted, 1, 'the flow ahead made its one item and no more');
});

test('concatFlows: unsubscribing tears down the running flow and subscribes no other', (t) => {
  const a = countingSource(100);
  const b = countingSource(100);
  const sink = subscribeManually(concatFlows([a.flow, b.flow]));
  sink.demand.request(2);
  sink.subscription.unsubscribe();
  t.is(a.log.tornDown, 1);
  t.is(b.log.subscribed, 0);
});

// ---- deferFlow ----

test('deferFlow forwards demand made before the flow opened', async (t) => {
  const source = countingSource(10);
  const sink = subscribeManually(deferFlow(async () => source.flow));
  sink.demand.request(3);
  sink.demand.request(2);
  t.is(source.log.subscribed, 0);
  await tick();
  t.deepEqual(sink.items, [0, 1, 2, 3, 4]);
  t.is(source.log.emitted, 5);
  sink.demand.request(100);
  t.true(sink.completed);
});

test('deferFlow: unsubscribing before it opens aborts the opener and releases a late flow', async (t) => {
  const source = countingSource(10);
  let signal: AbortSignal | undefined;
  let open!: () => void;
  const sink = subscribeManually(
    deferFlow((s) => {
      signal = s;
      return new Promise<Flow<number>>((resolve) => (open = () => resolve(source.flow)));
    }),
  );
  sink.demand.request(5);
  sink.subscription.unsubscribe();
  t.true(signal!.aborted);
  open();
  await tick();
  t.is(source.log.subscribed, 1, 'the late flow was subscribed once…');
  t.is(source.log.tornDown, 1, '…and cancelled at once, so what it holds is released');
  t.is(source.log.emitted, 0);
  t.deepEqual(sink.items, []);
});

test('deferFlow: a failed open is the flow error', async (t) => {
  const error = await t.throwsAsync(
    collect(
      deferFlow<number>(async () => {
        throw new RxtrainError('E_FETCH', 'connection refused');
      }),
    ),
  );
  t.is((error as RxtrainError).code, 'E_FETCH');
});

// ---- fromReadable ----

test('fromReadable: a file stream is not read while there is no demand', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'big.bin');
  const size = 4 * 1024 * 1024;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7) & 0xff;
  writeFileSync(file, bytes);
  const highWaterMark = 64 * 1024;
  let stream!: ReturnType<typeof createReadStream>;
  const sink = subscribeManually(
    fromReadable(() => {
      stream = createReadStream(file, { highWaterMark });
      return stream;
    }),
  );
  await tick(100);
  t.true(stream.bytesRead <= highWaterMark, `read ${stream.bytesRead} bytes with no demand`);
  t.true(stream.isPaused() || stream.readableFlowing === false);
  sink.demand.request(2);
  await tick(100);
  t.is(sink.items.length, 2);
  t.true(stream.bytesRead <= 3 * highWaterMark, `read ${stream.bytesRead} bytes for 2 chunks`);
  sink.demand.request(Number.POSITIVE_INFINITY);
  while (!sink.completed && !sink.error) await tick(10);
  t.true(sink.completed);
  t.true(Buffer.concat(sink.items).equals(bytes), 'every byte, in order');
});

test('fromReadable: an HTTP body is paused without demand, so TCP stops the sender', async (t) => {
  const total = 64 * 1024 * 1024;
  const block = Buffer.alloc(256 * 1024, 7);
  let written = 0;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': total });
    const write = () => {
      while (written < total) {
        written += block.byteLength;
        if (!res.write(block)) {
          res.once('drain', write);
          return;
        }
      }
      res.end();
    };
    write();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`);
    const body = Readable.fromWeb(response.body as never, { highWaterMark: 64 * 1024 });
    const sink = subscribeManually(fromReadable(() => body, 'the test body'));
    await tick(300);
    const stalled = written;
    await tick(200);
    t.is(written, stalled, 'the server is stuck in write() while nobody reads');
    t.true(stalled < 16 * 1024 * 1024, `the server got ${stalled} of ${total} bytes out with no demand`);
    sink.demand.request(Number.POSITIVE_INFINITY);
    while (!sink.completed && !sink.error) await tick(10);
    t.true(sink.completed);
    t.is(
      sink.items.reduce((n, c) => n + c.byteLength, 0),
      total,
    );
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('fromReadable: a stream closed before its end fails the flow instead of hanging', async (t) => {
  const stream = new Readable({ read() {} });
  const sink = subscribeManually(fromReadable(() => stream, 'the socket'));
  stream.push(Buffer.from('abc'));
  sink.demand.request(5);
  await tick();
  stream.destroy();
  await tick();
  t.deepEqual(sink.items.map(String), ['abc']);
  t.is((sink.error as RxtrainError).code, 'E_IO');
  t.regex((sink.error as Error).message, /the socket: closed before its end/);
});

test('fromReadable: a stream error is the flow error; unsubscribing destroys the stream', async (t) => {
  const failing = new Readable({ read() {} });
  const sink = subscribeManually(fromReadable(() => failing));
  sink.demand.request(1);
  failing.destroy(new Error('EIO: read failed'));
  await tick();
  t.regex((sink.error as Error).message, /read failed/);

  const open = new Readable({ read() {} });
  const other = subscribeManually(fromReadable(() => open));
  other.subscription.unsubscribe();
  t.true(open.destroyed);
});

// ---- fromPush: the only lossy bridge ----

test('fromPush hands items straight on while the consumer waits, and holds up to its capacity', (t) => {
  const source = new Subject<number>();
  const stats = edgeStats();
  const sink = subscribeManually(fromPush(source, { capacity: { items: 3 }, overflow: 'error', stats }));
  sink.demand.request(2);
  source.next(1);
  source.next(2);
  t.deepEqual(sink.items, [1, 2]);
  source.next(3);
  source.next(4);
  source.next(5);
  t.is(stats.depth, 3);
  sink.demand.request(10);
  t.deepEqual(sink.items, [1, 2, 3, 4, 5]);
  source.complete();
  t.true(sink.completed);
});

test('fromPush: overflow "error" fails with E_OVERFLOW rather than losing an item', (t) => {
  const source = new Subject<number>();
  const sink = subscribeManually(
    fromPush(source, { capacity: { items: 2 }, overflow: 'error', label: 'sensor feed' }),
  );
  for (let i = 0; i < 3; i++) source.next(i);
  t.is((sink.error as RxtrainError).code, 'E_OVERFLOW');
  t.regex((sink.error as Error).message, /sensor feed/);
  t.false(source.observed, 'the source is unsubscribed');
});

test('fromPush: drop-oldest keeps the newest items, drop-newest the oldest, and both count drops', (t) => {
  for (const [overflow, kept] of [
    ['drop-oldest', [7, 8, 9]],
    ['drop-newest', [0, 1, 2]],
  ] as const) {
    const source = new Subject<number>();
    const stats = edgeStats();
    const sink = subscribeManually(fromPush(source, { capacity: { items: 3 }, overflow, stats }));
    for (let i = 0; i < 10; i++) source.next(i);
    source.complete();
    sink.demand.request(10);
    t.deepEqual(sink.items, [...kept], overflow);
    t.is(stats.dropped, 7);
    t.is(stats.emitted - stats.consumed - stats.dropped, 0);
    t.true(sink.completed);
  }
});

test('fromPush: a byte capacity drops as many old items as the new one needs', (t) => {
  const source = new Subject<Uint8Array>();
  const stats = edgeStats();
  const sink = subscribeManually(
    fromPush(source, { capacity: { items: 100, bytes: 10 }, overflow: 'drop-oldest', stats }),
  );
  source.next(new Uint8Array(4).fill(1));
  source.next(new Uint8Array(4).fill(2));
  source.next(new Uint8Array(6).fill(3));
  t.is(stats.bytes, 10);
  t.is(stats.dropped, 1);
  sink.demand.request(10);
  t.deepEqual(
    sink.items.map((c) => c[0]),
    [2, 3],
  );
});

// ---- consume ----

test('consume waits for an async handler before asking for the next item', async (t) => {
  const source = countingSource(5);
  const emittedWhenHandled: number[] = [];
  let active = 0;
  let maxActive = 0;
  await consume(source.flow, async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    emittedWhenHandled.push(source.log.emitted);
    await tick(1);
    active--;
  }).done;
  t.is(maxActive, 1);
  t.deepEqual(emittedWhenHandled, [1, 2, 3, 4, 5], 'nothing is read ahead of the handler');
});
