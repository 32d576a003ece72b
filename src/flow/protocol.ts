/**
 * The demand protocol itself: what a Flow is, how a consumer asks (`Demand`), how a producer keeps
 * to what it was asked (`Outlet`) and how a consumer holds its upstream to that (`Upstream`).
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

/** What an `Upstream` passes on: the items that were asked for, then the upstream's end. */
export interface UpstreamObserver<T> {
  next(item: T): void;
  error(error: unknown): void;
  complete(): void;
}

/**
 * A consumer's subscription to the flow above it, asked for items only through `request` and
 * holding the producer to those requests. An item beyond them is a bug upstream that would
 * otherwise grow a queue where a bound was promised, so it is not passed on: the upstream is
 * cancelled and the observer gets `E_PROTOCOL` with `violation` as its message, which names the
 * boundary that caught it. Every operator that consumes a flow on its own behalf (`transform`,
 * `edge`, `concatFlows`, `consume`) subscribes through one of these.
 *
 * Created before it subscribes, so the operator's own callbacks can refer to it while the
 * upstream answers synchronously inside `subscribe` or `request`.
 */
export class Upstream<T> {
  private readonly demand = new Demand();
  private subscription: Subscription | undefined;
  private broken = false;
  private asked = 0;

  constructor(private readonly violation: string) {}

  /** Items requested and not yet received. */
  get outstanding(): number {
    return this.asked;
  }

  subscribe(flow: Flow<T>, observer: UpstreamObserver<T>): void {
    this.subscription = flow(this.demand.requests).subscribe({
      next: (item) => {
        if (this.broken) return;
        if (this.asked <= 0) {
          this.broken = true;
          this.subscription?.unsubscribe();
          observer.error(new RxtrainError('E_PROTOCOL', this.violation));
          return;
        }
        this.asked--;
        observer.next(item);
      },
      error: (error) => {
        if (!this.broken) observer.error(error);
      },
      complete: () => {
        if (!this.broken) observer.complete();
      },
    });
    // A violation inside subscribe() came before there was a subscription to cancel.
    if (this.broken) this.subscription.unsubscribe();
  }

  /** Ask for `n` more items; counted before asking, since a producer may answer inside the call. */
  request(n: number): void {
    if (n <= 0) return;
    this.asked += n;
    this.demand.request(n);
  }

  /** Cancel the upstream (nothing happens before `subscribe`). */
  unsubscribe(): void {
    this.subscription?.unsubscribe();
  }
}
