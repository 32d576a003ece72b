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
import { RxtrainError } from './errors.js';

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
      // Depth of this stage's own synchronous frames (a handler call, a delivery pass). Output
      // queued inside one is delivered when the frame returns; output queued from anywhere else
      // (a promise continuation, a stream callback) must wake delivery itself, or a handler that
      // pushes and then waits for that output to be consumed would wait forever.
      let frames = 0;
      const wake = () => {
        if (frames === 0) outlet.drain();
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
        wake: () => outlet.drain(),
        fail,
        get pending() {
          return queue.length - head;
        },
        get wanted() {
          return outlet.wanted;
        },
      };

      const outlet = new Outlet<B>(subscriber, () => {
        frames++;
        try {
          deliver();
        } finally {
          frames--;
        }
      });
      const deliver = () => {
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
      };

      const inputDemand = new Demand();
      upstream = input(inputDemand.requests).subscribe({
        next: (item) => {
          if (!inputRequested) {
            fail(new RxtrainError('E_PROTOCOL', 'an upstream stage emitted an item nobody requested'));
            return;
          }
          inputRequested = false;
          frames++;
          try {
            settle(handler.next(item, emitter));
          } catch (error) {
            fail(error);
            return;
          } finally {
            frames--;
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

/** Counters an edge exposes for progress events and backpressure tests. */
export interface EdgeStats {
  /** Items the upstream stage has emitted into the edge. */
  emitted: number;
  /** Items handed on to the downstream stage. */
  consumed: number;
  /** Items buffered now (emitted − consumed). */
  depth: number;
  maxDepth: number;
  /** Bytes buffered now, for items that have a size. */
  bytes: number;
  maxBytes: number;
}

export interface EdgeCapacity {
  /** Most items held between the two stages. */
  items: number;
  /** Most bytes held, counting items that have `byteLength` or a `bytes` payload. */
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

/**
 * A bounded buffer between two stages. It asks upstream for at most `capacity.items` items ahead
 * of what downstream has taken (and, with a byte capacity, stops asking while the buffered bytes
 * are at or over it), so `emitted − consumed ≤ capacity` at every moment.
 */
export function edge<T>(
  input: Flow<T>,
  capacity: EdgeCapacity,
  stats?: EdgeStats,
  measure: (item: T) => number = itemBytes,
): Flow<T> {
  const items = Math.max(1, Math.floor(capacity.items));
  const byteLimit = capacity.bytes ?? Number.POSITIVE_INFINITY;
  return (requests) =>
    new Observable<T>((subscriber) => {
      const s: EdgeStats = stats ?? { emitted: 0, consumed: 0, depth: 0, maxDepth: 0, bytes: 0, maxBytes: 0 };
      const ring: (T | undefined)[] = new Array(items);
      let head = 0;
      let size = 0;
      let outstanding = 0;
      let bufferedBytes = 0;
      let upstreamDone = false;
      const upstreamDemand = new Demand();

      const refill = () => {
        // Ask for one more at a time under a byte limit, in bulk otherwise.
        let room = items - size - outstanding;
        if (room <= 0) return;
        if (byteLimit !== Number.POSITIVE_INFINITY) {
          if (bufferedBytes >= byteLimit || outstanding > 0) return;
          room = 1;
        }
        outstanding += room;
        upstreamDemand.request(room);
      };

      const outlet = new Outlet<T>(subscriber, () => {
        while (size > 0 && outlet.wanted > 0 && !subscriber.closed) {
          const item = ring[head] as T;
          ring[head] = undefined;
          head = (head + 1) % items;
          size--;
          bufferedBytes -= measure(item);
          s.depth = size;
          s.bytes = bufferedBytes;
          s.consumed++;
          outlet.push(item);
        }
        if (size === 0 && upstreamDone) {
          subscriber.complete();
          return;
        }
        if (!upstreamDone) refill();
      });

      const upstream = input(upstreamDemand.requests).subscribe({
        next: (item) => {
          if (outstanding <= 0 || size >= items) {
            subscriber.error(new RxtrainError('E_PROTOCOL', 'a stage emitted past its edge capacity'));
            return;
          }
          outstanding--;
          ring[(head + size) % items] = item;
          size++;
          bufferedBytes += measure(item);
          s.emitted++;
          s.depth = size;
          s.bytes = bufferedBytes;
          if (size > s.maxDepth) s.maxDepth = size;
          if (bufferedBytes > s.maxBytes) s.maxBytes = bufferedBytes;
          outlet.drain();
        },
        error: (error) => subscriber.error(error),
        complete: () => {
          upstreamDone = true;
          outlet.drain();
        },
      });
      const requestSubscription = requests.subscribe((n) => outlet.add(n));
      refill();
      return () => {
        requestSubscription.unsubscribe();
        upstream.unsubscribe();
      };
    });
}

/**
 * Concatenate flows under demand: the next flow is subscribed when the previous one completes,
 * and the demand it left unmet carries over.
 */
export function concatFlows<T>(flows: Iterable<Flow<T>>): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      const iterator = flows[Symbol.iterator]();
      let wanted = 0;
      let current: Subscription | undefined;
      let currentDemand: Demand | undefined;
      let startingNext = false;
      const next = () => {
        if (startingNext) return;
        startingNext = true;
        try {
          for (;;) {
            const step = iterator.next();
            if (step.done) {
              subscriber.complete();
              return;
            }
            let completedSync = false;
            const demand = new Demand();
            currentDemand = demand;
            current = step.value(demand.requests).subscribe({
              next: (item) => {
                wanted--;
                subscriber.next(item);
              },
              error: (error) => subscriber.error(error),
              complete: () => {
                completedSync = true;
                if (!startingNext) next();
              },
            });
            if (wanted > 0 && !completedSync) demand.request(wanted);
            if (!completedSync) return;
          }
        } finally {
          startingNext = false;
        }
      };
      const sub = requests.subscribe((n) => {
        wanted += n;
        currentDemand?.request(n);
      });
      next();
      return () => {
        sub.unsubscribe();
        current?.unsubscribe();
      };
    });
}

/** A flow whose producer is set up asynchronously (opening a connection, reading a header). */
export function deferFlow<T>(open: () => Promise<Flow<T>>): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      let wanted = 0;
      let inner: Subscription | undefined;
      let demand: Demand | undefined;
      let closed = false;
      const sub = requests.subscribe((n) => {
        wanted += n;
        demand?.request(n);
      });
      open().then(
        (flow) => {
          if (closed) return;
          demand = new Demand();
          inner = flow(demand.requests).subscribe(subscriber);
          if (wanted > 0) demand.request(wanted);
        },
        (error) => subscriber.error(error),
      );
      return () => {
        closed = true;
        sub.unsubscribe();
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
 * Read a Node stream under demand. The stream stays in paused mode and is read only while the
 * consumer has asked for data, so its own buffer (and TCP's window behind it) stops the sender.
 */
export function fromReadable(open: () => Readable): Flow<Buffer> {
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
      stream.on('readable', () => outlet.drain());
      stream.on('end', () => {
        ended = true;
        outlet.drain();
      });
      stream.on('error', (error) => subscriber.error(error));
      const sub = requests.subscribe((n) => outlet.add(n));
      return () => {
        sub.unsubscribe();
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

/**
 * Reads a Node (or streamx) Readable in paused mode on behalf of a `transform`'s `pull()`: data is
 * taken only when the stage has demand, so the stream's own buffer fills and its writer waits.
 */
/** The part of a Node or streamx Readable that paused-mode reading needs. */
export interface PausedReadable {
  read(): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: Node and streamx type their listeners differently
  on(event: 'readable' | 'end' | 'error', listener: (...args: any[]) => void): unknown;
  resume(): unknown;
  destroy(error?: Error): unknown;
}

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
