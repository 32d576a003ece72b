/**
 * `fromPush`: the bridge from a push-only source into a Flow, and the only place rxtrain may lose
 * data (or fail) when a consumer falls behind.
 */

import { Observable } from 'rxjs/internal/Observable';
import { RxtrainError } from '../util/errors.js';
import { EdgeBuffer, type EdgeCapacity, type EdgeStats, edgeStats, itemBytes } from './edgeBuffer.js';
import { type Flow, Outlet } from './protocol.js';

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
