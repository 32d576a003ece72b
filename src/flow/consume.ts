/** `consume`: the final consumer at the end of a pipeline, turning a flow into a promise. */

import { type Flow, Upstream } from './protocol.js';

/**
 * Subscribe to a flow as its final consumer: ask for one item at a time and wait for an async
 * handler before asking for the next. Resolves when the flow completes; rejects with the flow's
 * error, the handler's, or `E_PROTOCOL` if the flow emits more than was asked for.
 */
export function consume<T>(
  flow: Flow<T>,
  onItem: (item: T) => void | Promise<void>,
  options: { prefetch?: number } = {},
): { done: Promise<void>; cancel: () => void } {
  const upstream = new Upstream<T>('a consumed flow emitted an item nobody requested');
  const prefetch = Math.max(1, options.prefetch ?? 1);
  const done = new Promise<void>((resolve, reject) => {
    let chain = Promise.resolve();
    let failed = false;
    upstream.subscribe(flow, {
      next: (item) => {
        chain = chain.then(async () => {
          if (failed) return;
          try {
            await onItem(item);
          } catch (error) {
            failed = true;
            upstream.unsubscribe();
            reject(error);
            return;
          }
          upstream.request(1);
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
    upstream.request(prefetch);
  });
  return { done, cancel: () => upstream.unsubscribe() };
}
