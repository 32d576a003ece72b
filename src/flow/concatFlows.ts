/** `concatFlows`: several flows one after another, with unmet demand carried from each to the next. */

import { Observable } from 'rxjs/internal/Observable';
import { type Flow, Upstream } from './protocol.js';

/**
 * Concatenate flows under demand: the next flow is subscribed when the previous one completes,
 * and the demand it left unmet carries over. The iterable is read lazily, one flow at a time (a
 * generator may yield an endless sequence of passes).
 */
export function concatFlows<T>(flows: Iterable<Flow<T>>): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      let iterator: Iterator<Flow<T>> | undefined;
      /** Demand from downstream not yet met; each flow is asked for all of it when subscribed. */
      let wanted = 0;
      /** The flow running now; undefined once it has completed. */
      let current: Upstream<T> | undefined;
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
            const upstream = new Upstream<T>('a flow emitted an item nobody requested');
            current = upstream;
            upstream.subscribe(step.value, {
              next: (item) => {
                wanted--;
                subscriber.next(item);
              },
              error: (error) => subscriber.error(error),
              complete: () => {
                currentDone = true;
                current = undefined;
                advance();
              },
            });
            if (!currentDone && wanted > 0) upstream.request(wanted);
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
        current?.request(n);
      });
      advance();
      return () => {
        requestSubscription.unsubscribe();
        current?.unsubscribe();
        iterator?.return?.();
      };
    });
}
