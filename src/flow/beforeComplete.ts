/** `beforeComplete`: a flow passed through, with a last step taken before its completion goes on. */

import { Observable } from 'rxjs/internal/Observable';
import type { Flow } from './protocol.js';

/**
 * `flow` unchanged, calling `last` when it completes and completing only after it: at once when it
 * returns nothing, once its promise settles when it returns one (a rejection is the flow's error).
 */
export function beforeComplete<T>(flow: Flow<T>, last: () => void | Promise<void>): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) =>
      flow(requests).subscribe({
        next: (item) => subscriber.next(item),
        error: (error) => subscriber.error(error),
        complete: () => {
          let pending: void | Promise<void>;
          try {
            pending = last();
          } catch (error) {
            subscriber.error(error);
            return;
          }
          if (!pending) return subscriber.complete();
          pending.then(
            () => subscriber.complete(),
            (error: unknown) => subscriber.error(error),
          );
        },
      }),
    );
}
