/**
 * `transform`: the one building block of every stage. A `Transformer` turns input items into
 * output items through an `Emitter`, and `transform` runs it under demand.
 */

import { Observable } from 'rxjs/internal/Observable';
import { type Flow, Outlet, Upstream } from './protocol.js';

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
      let inputDone = false;
      let completeCalled = false;
      let busy = false;
      let ended = false;
      // At most one input is asked for at a time: `outstanding` is 0 or 1.
      const upstream = new Upstream<A>('an upstream stage emitted an item nobody requested');
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
            upstream.unsubscribe();
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
          if (upstream.outstanding === 0) upstream.request(1);
          return;
        }
      });

      upstream.subscribe(input, {
        next: (item) => {
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
        upstream.unsubscribe();
        handler.teardown?.();
      };
    });
}
