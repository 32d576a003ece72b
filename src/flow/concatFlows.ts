/** `concatFlows`: several flows one after another, with unmet demand carried from each to the next. */

import { Observable } from 'rxjs/internal/Observable';
import { type Flow, Upstream } from './protocol.js';

export interface ConcatOptions {
  /**
   * How many flows after the current one are already subscribed, each asked for its first item,
   * which is held until its turn: their producers start early (the next files opened and their
   * first blocks read while the chunks of the one before go out). One item each, no more; an
   * error or end is held for its turn too. Default 0: a flow starts when the one before it has
   * completed.
   */
  readAhead?: number;
}

/** A subscribed flow: what it sent that has not been passed on, and how it ended. */
interface Running<T> {
  upstream: Upstream<T>;
  held: T[];
  ended: boolean;
  failure?: { error: unknown };
}

/**
 * Concatenate flows under demand: the next flow is subscribed when the previous one completes (or,
 * with `readAhead`, earlier), and the demand it left unmet carries over. The iterable is read
 * lazily, one flow at a time (with `readAhead`, that many ahead): a generator may yield an endless
 * sequence of passes.
 */
export function concatFlows<T>(flows: Iterable<Flow<T>>, options: ConcatOptions = {}): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      let iterator: Iterator<Flow<T>> | undefined;
      let exhausted = false;
      /** Demand from downstream not yet met; the current flow is asked for all of it. */
      let wanted = 0;
      /** The flow whose items go out now, and those subscribed ahead of their turn. */
      let current: Running<T> | undefined;
      const ahead: Running<T>[] = [];
      const readAhead = Math.max(0, options.readAhead ?? 0);
      let pumping = false;
      let again = false;

      /** Subscribe the iterable's next flow, or undefined when there is none. */
      const start = (): Running<T> | undefined => {
        if (exhausted) return undefined;
        iterator ??= flows[Symbol.iterator]();
        const step = iterator.next();
        if (step.done) {
          exhausted = true;
          return undefined;
        }
        const run: Running<T> = {
          upstream: new Upstream<T>('a flow emitted an item nobody requested'),
          held: [],
          ended: false,
        };
        run.upstream.subscribe(step.value, {
          next: (item) => {
            run.held.push(item);
            pump();
          },
          error: (error) => {
            run.failure = { error };
            pump();
          },
          complete: () => {
            run.ended = true;
            pump();
          },
        });
        return run;
      };

      /**
       * Pass on what the current flow holds, move past flows that have ended, and keep the current
       * one asked for what is wanted. Loops rather than recursing (flows may answer inside
       * `subscribe` or `request`, and may complete at once); a call made meanwhile (a `next` that
       * asks for more) is folded into the running loop.
       */
      const pump = () => {
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        try {
          do {
            again = false;
            while (!subscriber.closed) {
              if (!current) {
                current = ahead.shift() ?? start();
                if (!current) {
                  subscriber.complete();
                  return;
                }
                while (ahead.length < readAhead && !exhausted) {
                  const next = start();
                  if (!next) break;
                  ahead.push(next);
                  next.upstream.request(1);
                }
              }
              const run = current;
              while (run.held.length > 0 && wanted > 0 && !subscriber.closed) {
                wanted--;
                subscriber.next(run.held.shift()!);
              }
              if (run.held.length > 0) break; // until more is wanted
              if (run.failure) {
                subscriber.error(run.failure.error);
                return;
              }
              if (!run.ended) {
                const more = wanted - run.upstream.outstanding;
                if (more > 0) run.upstream.request(more);
                // A flow that answered inside `request` is looked at again.
                if (run.held.length === 0 && !run.ended && !run.failure) break;
                continue;
              }
              current = undefined;
            }
          } while (again && !subscriber.closed);
        } catch (error) {
          subscriber.error(error);
        } finally {
          pumping = false;
        }
      };

      const requestSubscription = requests.subscribe((n) => {
        wanted += n;
        pump();
      });
      pump();
      return () => {
        requestSubscription.unsubscribe();
        current?.upstream.unsubscribe();
        for (const run of ahead) run.upstream.unsubscribe();
        iterator?.return?.();
      };
    });
}
