/** `deferFlow`: a flow whose producer is opened asynchronously, holding demand until it is. */

import { Observable } from 'rxjs/internal/Observable';
import { Subject } from 'rxjs/internal/Subject';
import type { Subscription } from 'rxjs/internal/Subscription';
import { Demand, type Flow } from './protocol.js';

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
        // Items pass straight through, unchecked: the consumer of this flow holds the producer to
        // its demand, as it would had the flow been ready from the start.
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
