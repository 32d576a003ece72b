/** `consume`: the final consumer at the end of a pipeline, turning a flow into a promise. */

import type { Subscription } from 'rxjs/internal/Subscription';
import { Demand, type Flow } from './protocol.js';

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
