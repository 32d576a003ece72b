/** `edge`: the bounded, demand-driven buffer between two stages. */

import { Observable } from 'rxjs/internal/Observable';
import { EdgeBuffer, type EdgeCapacity, type EdgeStats, edgeStats, itemBytes } from './edgeBuffer.js';
import { type Flow, Outlet, Upstream } from './protocol.js';

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
      let upstreamDone = false;
      const upstream = new Upstream<T>('a stage emitted past its edge capacity');

      const refill = () => {
        const outstanding = upstream.outstanding;
        let room = itemLimit - buffer.length - outstanding;
        if (room <= 0) return;
        // Under a byte limit, item sizes are unknown in advance: ask for one at a time.
        if (byteLimit !== Number.POSITIVE_INFINITY) {
          if (buffer.bytes >= byteLimit || outstanding > 0) return;
          room = 1;
        }
        upstream.request(room);
      };

      const outlet = new Outlet<T>(subscriber, () => {
        buffer.deliver(outlet);
        if (buffer.length === 0 && upstreamDone) {
          subscriber.complete();
          return;
        }
        if (!upstreamDone) refill();
      });

      upstream.subscribe(input, {
        next: (item) => {
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
