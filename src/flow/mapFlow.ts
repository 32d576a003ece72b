/** `mapFlow`: the stateless 1:1 operator, for stages that need no queue of their own. */

import { Observable } from 'rxjs/internal/Observable';
import type { Flow } from './protocol.js';

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
