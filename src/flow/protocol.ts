/**
 * The demand protocol itself: what a Flow is, how a consumer asks (`Demand`) and how a producer
 * keeps to what it was asked (`Outlet`).
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

// The classes come from rxjs's own modules rather than its index: importing 'rxjs' loads all of
// its ~400 modules (about 0.1 s and 10 MB at every start); the flow modules need a handful. These
// paths are not rxjs's public API, so package.json pins rxjs to an exact version.
import type { Observable } from 'rxjs/internal/Observable';
import { Subject } from 'rxjs/internal/Subject';
import type { Subscriber } from 'rxjs/internal/Subscriber';
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
