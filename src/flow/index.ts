/**
 * Demand-driven streams on top of RxJS.
 *
 * RxJS has no backpressure of its own (ReactiveX/rxjs#71): an Observable pushes as fast as its
 * producer can. A `Flow` adds the missing half, the way Reactive Streams does: the consumer hands
 * the producer an Observable of *requests* (`request(n)` = "I can take n more items") and the
 * producer emits at most as many items as were requested. Every rxtrain stage maps a Flow to a
 * Flow, so demand travels from the SGD updater back to the socket, and an `edge` between two
 * stages holds at most its capacity.
 *
 * Flows are cold recipes: calling `flow(requests)` does nothing until the returned Observable is
 * subscribed, and each subscription starts the producer afresh.
 */

import type { Readable } from 'node:stream';
// The classes come from rxjs's own modules rather than its index: importing 'rxjs' loads all of
// its ~400 modules (about 0.1 s and 10 MB at every start); these four need a handful. These paths
// are not rxjs's public API, so package.json pins rxjs to an exact version.
import { Observable } from 'rxjs/internal/Observable';
import { Subject } from 'rxjs/internal/Subject';
import type { Subscriber } from 'rxjs/internal/Subscriber';
import type { Subscription } from 'rxjs/internal/Subscription';
import { RxtrainError } from '../util/errors.js';

/** A cold, demand-driven stream: the consumer pushes request counts, the producer emits no more. */
export type Flow<T> = (requests: Observable<number>) => Observable<T>;

/** A stage's streaming part: one Flow in, one Flow out. */
export type FlowOperator<A, B> = (input: Flow<A>) => Flow<B>;

/** The consumer's end of a flow: subscribe, then ask for items. */
export class Demand {
  readonly requests = new Subject<number>();
  request(n: number): void {
    if (n > 0) this.requests.next(n);
  }
}

/**
 * Tracks outstanding demand for a producer and calls `drain` whenever there may be work to do.
 * Re-entrant calls (a `next` that synchronously requests more) are folded into the running drain
 * loop instead of recursing, so a long synchronous run never grows the stack.
 */
export class Outlet<T> {
  private demand = 0;
  private draining = false;
  private again = false;
  emitted = 0;

  constructor(
    private readonly subscriber: Subscriber<T>,
    private readonly drainOnce: () => void,
  ) {}

  get wanted(): number {
    return this.demand;
  }

  get closed(): boolean {
    return this.subscriber.closed;
  }

  add(n: number): void {
    this.demand += n;
    this.drain();
  }

  /** Emit one item; only legal while there is demand. */
  push(item: T): void {
    if (this.demand <= 0) {
      this.subscriber.error(new RxtrainError('E_PROTOCOL', 'a producer emitted an item nobody requested'));
      return;
    }
    this.demand--;
    this.emitted++;
    this.subscriber.next(item);
  }

  drain(): void {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.again = false;
        if (this.subscriber.closed) return;
        this.drainOnce();
      } while (this.again);
    } catch (error) {
      this.subscriber.error(error);
    } finally {
      this.draining = false;
    }
  }
}

/** The output side a `transform` gives its handler. */
export interface Emitter<B> {
  /** Queue an output; it is delivered as soon as downstream asks for it. */
  push(item: B): void;
  /** No more output will come: complete downstream once the queue is delivered, cancel upstream. */
  end(): void;
  /** Ask for a delivery pass: call when output became available asynchronously (a stream turned readable). */
  wake(): void;
  /** Fail the stage from an asynchronous callback. */
  fail(error: unknown): void;
  /** Outputs waiting for downstream demand. */
  readonly pending: number;
  /** Downstream demand not yet met. */
  readonly wanted: number;
}

/** How a stage turns input items into output items. All methods may be synchronous. */
export interface Transformer<A, B> {
  /** One input item. Return a promise to hold further input until it settles. */
  next(item: A, out: Emitter<B>): void | Promise<void>;
  /** Input has ended; push what is left. */
  complete?(out: Emitter<B>): void | Promise<void>;
  /**
   * Called when downstream wants output and none is queued, before more input is requested (and
   * also while a promise from `next`/`complete` is pending). Return true after pushing output on
   * its own; false to ask for input instead. A sampler generating from what it holds uses this,
   * and so does a stage reading from an inner stream.
   */
  pull?(out: Emitter<B>): boolean;
  /** Release resources; called once on completion, error or unsubscribe. */
  teardown?(): void;
}

/**
 * The one building block of every stage: consume input only while downstream has demand and
 * nothing is queued, so a stage holds at most the outputs of one input item.
 */
export function transform<A, B>(input: Flow<A>, create: () => Transformer<A, B>): Flow<B> {
  return (requests) =>
    new Observable<B>((subscriber) => {
      const handler = create();
      const queue: B[] = [];
      let head = 0;
      let inputRequested = false;
      let inputDone = false;
      let completeCalled = false;
      let busy = false;
      let ended = false;
      let upstream: Subscription | undefined;
      // Inside handler.next() a delivery pass must not start (it could request input and call
      // next() again before this call returns); one runs as soon as next() returns. Anywhere else
      // (a promise continuation, a stream callback, or during a pass, where it only asks the pass
      // to go round again) output pushed or announced must wake delivery itself, or a handler that
      // pushes and then waits for that output to be consumed would wait forever.
      let inNext = 0;
      const wake = () => {
        if (inNext === 0) outlet.drain();
      };

      const fail = (error: unknown) => subscriber.error(error);
      const settle = (result: void | Promise<void>) => {
        if (result && typeof (result as Promise<void>).then === 'function') {
          busy = true;
          (result as Promise<void>).then(
            () => {
              busy = false;
              outlet.drain();
            },
            (error) => {
              busy = false;
              fail(error);
            },
          );
        }
      };

      const emitter: Emitter<B> = {
        push: (item) => {
          queue.push(item);
          wake();
        },
        end: () => {
          ended = true;
          wake();
        },
        wake,
        fail,
        get pending() {
          return queue.length - head;
        },
        get wanted() {
          return outlet.wanted;
        },
      };

      const outlet = new Outlet<B>(subscriber, () => {
        for (;;) {
          if (subscriber.closed) return;
          if (head < queue.length) {
            if (outlet.wanted <= 0) return;
            const item = queue[head]!;
            queue[head++] = undefined as B;
            if (head === queue.length) {
              queue.length = 0;
              head = 0;
            }
            outlet.push(item);
            continue;
          }
          if (ended) {
            upstream?.unsubscribe();
            subscriber.complete();
            return;
          }
          if (outlet.wanted <= 0) return;
          if (handler.pull?.(emitter)) continue;
          if (busy) return;
          if (inputDone && !completeCalled) {
            completeCalled = true;
            settle(handler.complete?.(emitter));
            continue;
          }
          if (inputDone) {
            ended = true;
            continue;
          }
          if (!inputRequested) {
            inputRequested = true;
            inputDemand.request(1);
          }
          return;
        }
      });

      const inputDemand = new Demand();
      upstream = input(inputDemand.requests).subscribe({
        next: (item) => {
          if (!inputRequested) {
            fail(new RxtrainError('E_PROTOCOL', 'an upstream stage emitted an item nobody requested'));
            return;
          }
          inputRequested = false;
          inNext++;
          try {
            settle(handler.next(item, emitter));
          } catch (error) {
            fail(error);
            return;
          } finally {
            inNext--;
          }
          outlet.drain();
        },
        error: fail,
        complete: () => {
          inputDone = true;
          outlet.drain();
        },
      });
      const requestSubscription = requests.subscribe((n) => outlet.add(n));
      return () => {
        requestSubscription.unsubscribe();
        upstream?.unsubscribe();
        handler.teardown?.();
      };
    });
}

/** A 1:1 map: no state, no queue; demand passes straight through. */
export function mapFlow<A, B>(input: Flow<A>, fn: (item: A) => B): Flow<B> {
  return (requests) =>
    new Observable<B>((subscriber) =>
      input(requests).subscribe({
        next: (item) => {
          let out: B;
          try {
            out = fn(item);
          } catch (error) {
            subscriber.error(error);
            return;
          }
          subscriber.next(out);
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}

/**
 * A first-in first-out queue over a ring buffer that doubles when full: O(1) push and shift, no
 * allocation per item, and no up-front array as large as a capacity that may be huge.
 */
class Fifo<T> {
  private slots: (T | undefined)[] = new Array(8);
  private head = 0;
  length = 0;

  push(item: T): void {
    if (this.length === this.slots.length) {
      const grown: (T | undefined)[] = new Array(this.slots.length * 2);
      for (let i = 0; i < this.length; i++) grown[i] = this.slots[(this.head + i) % this.slots.length];
      this.slots = grown;
      this.head = 0;
    }
    this.slots[(this.head + this.length) % this.slots.length] = item;
    this.length++;
  }

  /** Remove and return the oldest item; only call when `length > 0`. */
  shift(): T {
    const item = this.slots[this.head] as T;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.length--;
    return item;
  }

  clear(): void {
    this.slots = new Array(8);
    this.head = 0;
    this.length = 0;
  }
}

/**
 * Counters of one edge, for progress events and backpressure tests. Several subscriptions of the
 * same edge (a sampler re-reading its input once per pass) add into one record.
 */
export interface EdgeStats {
  /** Items the upstream stage has emitted into the edge. */
  emitted: number;
  /** Items handed on to the downstream stage. */
  consumed: number;
  /** Items a lossy buffer discarded (only `fromPush` with a `drop-*` strategy ever drops). */
  dropped: number;
  /** Items buffered now: emitted − consumed − dropped. */
  depth: number;
  maxDepth: number;
  /** Bytes buffered now, for items that have a size. */
  bytes: number;
  maxBytes: number;
}

export function edgeStats(): EdgeStats {
  return { emitted: 0, consumed: 0, dropped: 0, depth: 0, maxDepth: 0, bytes: 0, maxBytes: 0 };
}

export interface EdgeCapacity {
  /** Most items held between the two stages. */
  items: number;
  /**
   * Most bytes held, counting items that have `byteLength` or a `bytes` payload. The edge stops
   * asking once it holds this many, so it may exceed the limit by at most one item.
   */
  bytes?: number;
}

/** The size an item occupies in an edge buffer, for byte capacities. */
export function itemBytes(item: unknown): number {
  if (item instanceof Uint8Array) return item.byteLength;
  if (item && typeof item === 'object' && 'byteLength' in item) {
    const n = (item as { byteLength: unknown }).byteLength;
    if (typeof n === 'number') return n;
  }
  return 0;
}

/** Buffered items with their sizes, keeping an `EdgeStats` record in step. */
class EdgeBuffer<T> {
  private readonly items = new Fifo<T>();
  private readonly sizes = new Fifo<number>();
  /** Bytes held by this buffer (the stats record may sum several buffers). */
  bytes = 0;

  constructor(
    private readonly stats: EdgeStats,
    private readonly measure: (item: T) => number,
  ) {}

  get length(): number {
    return this.items.length;
  }

  add(item: T): void {
    const size = this.measure(item);
    this.items.push(item);
    this.sizes.push(size);
    this.bytes += size;
    const s = this.stats;
    s.emitted++;
    s.depth++;
    s.bytes += size;
    if (s.depth > s.maxDepth) s.maxDepth = s.depth;
    if (s.bytes > s.maxBytes) s.maxBytes = s.bytes;
  }

  /** The oldest item, counted as consumed (or as dropped). */
  take(dropped = false): T {
    const size = this.sizes.shift();
    this.bytes -= size;
    const s = this.stats;
    if (dropped) s.dropped++;
    else s.consumed++;
    s.depth--;
    s.bytes -= size;
    return this.items.shift();
  }

  /** Hand held items to the consumer, oldest first, as far as its demand goes. */
  deliver(outlet: Outlet<T>): void {
    while (this.items.length > 0 && outlet.wanted > 0 && !outlet.closed) outlet.push(this.take());
  }

  /** Forget what is held (the subscription ended), taking it out of the stats' depth. */
  clear(): void {
    this.stats.depth -= this.items.length;
    this.stats.bytes -= this.bytes;
    this.bytes = 0;
    this.items.clear();
    this.sizes.clear();
  }
}

/**
 * A bounded buffer between two stages. It asks upstream for at most `capacity.items` items ahead
 * of what downstream has taken (and, with a byte capacity, stops asking while the buffered bytes
 * are at or over it), so `emitted − consumed ≤ capacity.items` at every moment. An upstream that
 * emits more than it was asked for is a bug, reported as `E_PROTOCOL`.
 */
export function edge<T>(
  input: Flow<T>,
  capacity: EdgeCapacity,
  stats: EdgeStats = edgeStats(),
  measure: (item: T) => number = itemBytes,
): Flow<T> {
  const itemLimit = Math.max(1, Math.floor(capacity.items));
  const byteLimit = capacity.bytes ?? Number.POSITIVE_INFINITY;
  return (requests) =>
    new Observable<T>((subscriber) => {
      const buffer = new EdgeBuffer<T>(stats, measure);
      /** Items requested from upstream and not yet received. */
      let outstanding = 0;
      let upstreamDone = false;
      const upstreamDemand = new Demand();

      const refill = () => {
        let room = itemLimit - buffer.length - outstanding;
        if (room <= 0) return;
        // Under a byte limit, item sizes are unknown in advance: ask for one at a time.
        if (byteLimit !== Number.POSITIVE_INFINITY) {
          if (buffer.bytes >= byteLimit || outstanding > 0) return;
          room = 1;
        }
        outstanding += room;
        upstreamDemand.request(room);
      };

      const outlet = new Outlet<T>(subscriber, () => {
        buffer.deliver(outlet);
        if (buffer.length === 0 && upstreamDone) {
          subscriber.complete();
          return;
        }
        if (!upstreamDone) refill();
      });

      const upstream = input(upstreamDemand.requests).subscribe({
        next: (item) => {
          if (outstanding <= 0) {
            subscriber.error(new RxtrainError('E_PROTOCOL', 'a stage emitted past its edge capacity'));
            return;
          }
          outstanding--;
          buffer.add(item);
          outlet.drain();
        },
        error: (error) => subscriber.error(error),
        complete: () => {
          upstreamDone = true;
          outlet.drain();
        },
      });
      const requestSubscription = requests.subscribe((n) => outlet.add(n));
      outlet.drain();
      return () => {
        requestSubscription.unsubscribe();
        upstream.unsubscribe();
        buffer.clear();
      };
    });
}

/** What a bridge from a push-only source does when its buffer is full. */
export type Overflow = 'error' | 'drop-oldest' | 'drop-newest';

export interface PushBufferOptions<T> {
  /** Most items (and bytes) held for the consumer. */
  capacity: EdgeCapacity;
  /**
   * When full: fail with `E_OVERFLOW` (`error`), discard the oldest held item (`drop-oldest`, for
   * "latest value wins" feeds) or the arriving one (`drop-newest`). There is no default: a stage
   * that accepts losing data says so.
   */
  overflow: Overflow;
  stats?: EdgeStats;
  measure?: (item: T) => number;
  /** Names the source in the overflow error. */
  label?: string;
}

/**
 * Bridge a hot, push-only source (an RxJS Observable of events, a socket that cannot be paused)
 * into a Flow. Such a source ignores demand, so a bounded buffer must either fail or lose items
 * when the consumer falls behind; this is the only place rxtrain may lose data, and only with the
 * strategy its caller names. Sources that can be paused (Node streams) use `fromReadable` instead.
 *
 * @example
 *   // A stage reading a live feed keeps the 100 newest readings and drops older ones.
 *   fromPush(readings$, { capacity: { items: 100 }, overflow: 'drop-oldest' })
 */
export function fromPush<T>(source: Observable<T>, options: PushBufferOptions<T>): Flow<T> {
  const itemLimit = Math.max(1, Math.floor(options.capacity.items));
  const byteLimit = options.capacity.bytes ?? Number.POSITIVE_INFINITY;
  const measure = options.measure ?? itemBytes;
  return (requests) =>
    new Observable<T>((subscriber) => {
      const stats = options.stats ?? edgeStats();
      const buffer = new EdgeBuffer<T>(stats, measure);
      let sourceDone = false;
      const outlet = new Outlet<T>(subscriber, () => {
        buffer.deliver(outlet);
        if (buffer.length === 0 && sourceDone) subscriber.complete();
      });
      const full = (size: number) =>
        buffer.length >= itemLimit || (buffer.length > 0 && buffer.bytes + size > byteLimit);
      const requestSubscription = requests.subscribe((n) => outlet.add(n));
      const sourceSubscription = source.subscribe({
        next: (item) => {
          // Hand the item straight on when the consumer is waiting for it.
          if (buffer.length === 0 && outlet.wanted > 0) {
            stats.emitted++;
            stats.consumed++;
            outlet.push(item);
            return;
          }
          const size = measure(item);
          if (full(size)) {
            if (options.overflow === 'error') {
              subscriber.error(
                new RxtrainError(
                  'E_OVERFLOW',
                  `${options.label ?? 'a push source'}: the consumer fell ${buffer.length} items behind (capacity ${itemLimit}${byteLimit < Number.POSITIVE_INFINITY ? `, ${byteLimit} bytes` : ''}); raise the capacity or choose a drop-oldest/drop-newest overflow`,
                ),
              );
              return;
            }
            if (options.overflow === 'drop-newest') {
              stats.emitted++;
              stats.dropped++;
              return;
            }
            while (buffer.length > 0 && full(size)) buffer.take(true);
          }
          buffer.add(item);
          outlet.drain();
        },
        error: (error) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          outlet.drain();
        },
      });
      return () => {
        requestSubscription.unsubscribe();
        sourceSubscription.unsubscribe();
        buffer.clear();
      };
    });
}

/**
 * Concatenate flows under demand: the next flow is subscribed when the previous one completes,
 * and the demand it left unmet carries over. The iterable is read lazily, one flow at a time (a
 * generator may yield an endless sequence of passes).
 */
export function concatFlows<T>(flows: Iterable<Flow<T>>): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      let iterator: Iterator<Flow<T>> | undefined;
      /** Demand from downstream not yet met. */
      let wanted = 0;
      let current: Subscription | undefined;
      let currentDemand: Demand | undefined;
      let currentDone = false;
      let advancing = false;

      /** Subscribe the next flow; loops (instead of recursing) past flows that complete at once. */
      const advance = () => {
        if (advancing) return; // the running loop sees `currentDone` and moves on
        advancing = true;
        try {
          iterator ??= flows[Symbol.iterator]();
          while (!subscriber.closed) {
            const step = iterator.next();
            if (step.done) {
              subscriber.complete();
              return;
            }
            currentDone = false;
            const demand = new Demand();
            currentDemand = demand;
            current = step.value(demand.requests).subscribe({
              next: (item) => {
                if (wanted <= 0) {
                  subscriber.error(new RxtrainError('E_PROTOCOL', 'a flow emitted an item nobody requested'));
                  return;
                }
                wanted--;
                subscriber.next(item);
              },
              error: (error) => subscriber.error(error),
              complete: () => {
                currentDone = true;
                currentDemand = undefined;
                advance();
              },
            });
            if (!currentDone && wanted > 0) demand.request(wanted);
            if (!currentDone) return;
          }
        } catch (error) {
          subscriber.error(error);
        } finally {
          advancing = false;
        }
      };

      const requestSubscription = requests.subscribe((n) => {
        wanted += n;
        currentDemand?.request(n);
      });
      advance();
      return () => {
        requestSubscription.unsubscribe();
        current?.unsubscribe();
        iterator?.return?.();
      };
    });
}

/**
 * A flow whose producer is set up asynchronously (opening a connection, reading a header). `open`
 * gets a signal that aborts when the consumer unsubscribes first; a flow that opens anyway after
 * that is subscribed and cancelled at once, so whatever it holds (a response body) is released.
 */
export function deferFlow<T>(open: (signal: AbortSignal) => Promise<Flow<T>>): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      const abort = new AbortController();
      let wanted = 0;
      let demand: Demand | undefined;
      let inner: Subscription | undefined;
      const requestSubscription = requests.subscribe((n) => {
        wanted += n;
        demand?.request(n);
      });
      const opened = (flow: Flow<T>) => {
        if (subscriber.closed) {
          flow(new Subject<number>())
            .subscribe({ error: () => {} })
            .unsubscribe();
          return;
        }
        demand = new Demand();
        inner = flow(demand.requests).subscribe({
          next: (item) => subscriber.next(item),
          error: (error) => subscriber.error(error),
          complete: () => subscriber.complete(),
        });
        demand.request(wanted);
      };
      new Promise<Flow<T>>((resolve) => resolve(open(abort.signal))).then(opened, (error) =>
        subscriber.error(error),
      );
      return () => {
        abort.abort();
        requestSubscription.unsubscribe();
        inner?.unsubscribe();
      };
    });
}

/** A flow of no items. */
export const emptyFlow: Flow<never> = () => new Observable<never>((subscriber) => subscriber.complete());

/** A flow over an array, emitted under demand. */
export function fromArray<T>(items: readonly T[]): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      let i = 0;
      const outlet = new Outlet<T>(subscriber, () => {
        while (outlet.wanted > 0 && i < items.length && !subscriber.closed) outlet.push(items[i++]!);
        if (i === items.length) subscriber.complete();
      });
      const sub = requests.subscribe((n) => outlet.add(n));
      if (items.length === 0) subscriber.complete();
      return () => sub.unsubscribe();
    });
}

/**
 * Read a Node stream under demand. The stream stays in paused mode and `read()` is called only
 * while the consumer has asked for data, so the stream fills its own buffer (`highWaterMark`),
 * stops reading its source, and TCP's window stops the sender behind it. A stream that closes
 * without ending (a dropped connection that raised no error) fails the flow rather than hanging
 * it; `label` names the stream in that error.
 */
export function fromReadable(open: () => Readable, label = 'a stream'): Flow<Buffer> {
  return (requests) =>
    new Observable<Buffer>((subscriber) => {
      let stream: Readable;
      try {
        stream = open();
      } catch (error) {
        subscriber.error(error);
        return;
      }
      let ended = false;
      const outlet = new Outlet<Buffer>(subscriber, () => {
        while (outlet.wanted > 0 && !subscriber.closed) {
          const chunk = stream.read() as Buffer | null;
          if (chunk === null) break;
          outlet.push(chunk);
        }
        if (ended) subscriber.complete();
      });
      const onReadable = () => outlet.drain();
      const onEnd = () => {
        ended = true;
        outlet.drain();
      };
      const onError = (error: Error) => subscriber.error(error);
      const onClose = () => {
        if (!ended) subscriber.error(new RxtrainError('E_IO', `${label}: closed before its end`));
      };
      stream.on('readable', onReadable);
      stream.on('end', onEnd);
      stream.on('error', onError);
      stream.on('close', onClose);
      const sub = requests.subscribe((n) => outlet.add(n));
      return () => {
        sub.unsubscribe();
        stream.off('readable', onReadable);
        stream.off('end', onEnd);
        stream.off('close', onClose);
        // Keep a listener: destroying may still emit an error, which must not crash the process.
        stream.off('error', onError);
        stream.on('error', () => {});
        stream.destroy();
      };
    });
}

/**
 * Subscribe to a flow as its final consumer: ask for one item at a time and wait for an async
 * handler before asking for the next. Resolves when the flow completes.
 */
export function consume<T>(
  flow: Flow<T>,
  onItem: (item: T) => void | Promise<void>,
  options: { prefetch?: number } = {},
): { done: Promise<void>; cancel: () => void } {
  const demand = new Demand();
  let subscription: Subscription | undefined;
  const prefetch = Math.max(1, options.prefetch ?? 1);
  const done = new Promise<void>((resolve, reject) => {
    let chain = Promise.resolve();
    let failed = false;
    subscription = flow(demand.requests).subscribe({
      next: (item) => {
        chain = chain.then(async () => {
          if (failed) return;
          try {
            await onItem(item);
          } catch (error) {
            failed = true;
            subscription?.unsubscribe();
            reject(error);
            return;
          }
          demand.request(1);
        });
      },
      error: (error) => {
        failed = true;
        reject(error);
      },
      complete: () => {
        chain.then(() => {
          if (!failed) resolve();
        });
      },
    });
    demand.request(prefetch);
  });
  return { done, cancel: () => subscription?.unsubscribe() };
}

/** The part of a Node or streamx Readable that paused-mode reading needs. */
export interface PausedReadable {
  read(): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: Node and streamx type their listeners differently
  on(event: 'readable' | 'end' | 'error', listener: (...args: any[]) => void): unknown;
  resume(): unknown;
  destroy(error?: Error): unknown;
}

/**
 * Reads a Node (or streamx) Readable in paused mode on behalf of a `transform`'s `pull()`: data is
 * taken only when the stage has demand, so the stream's own buffer fills and its writer waits.
 */
export class StreamPuller {
  private ended = false;

  constructor(
    readonly stream: PausedReadable,
    wake: () => void,
    fail: (error: unknown) => void,
  ) {
    stream.on('readable', wake);
    stream.on('end', () => {
      this.ended = true;
      wake();
    });
    stream.on('error', fail);
  }

  /** The next chunk, or null when none is buffered right now. */
  read(): Buffer | null {
    return this.stream.read() as Buffer | null;
  }

  /** The stream has ended and everything was read. */
  get done(): boolean {
    return this.ended;
  }
}
