/** Leaf flows, the producers at the head of a chain: `emptyFlow`, `fromArray`, `fromReadable`. */

import type { Readable } from 'node:stream';
import { Observable } from 'rxjs/internal/Observable';
import { RxtrainError } from '../util/errors.js';
import { type Flow, Outlet } from './protocol.js';

/** A flow of no items. */
export const emptyFlow: Flow<never> = () => new Observable<never>((subscriber) => subscriber.complete());

/** A flow over an array, emitted under demand. */
export function fromArray<T>(items: readonly T[]): Flow<T> {
  return (requests) =>
    new Observable<T>((subscriber) => {
      let i = 0;
      const outlet = new Outlet<T>(subscriber, () => {
        while (outlet.wanted > 0 && i < items.length && !subscriber.closed) outlet.push(items[i++]!);
        if (i === items.length) subscriber.complete();
      });
      const sub = requests.subscribe((n) => outlet.add(n));
      if (items.length === 0) subscriber.complete();
      return () => sub.unsubscribe();
    });
}

/**
 * Read a Node stream under demand. The stream stays in paused mode and `read()` is called only
 * while the consumer has asked for data, so the stream fills its own buffer (`highWaterMark`),
 * stops reading its source, and TCP's window stops the sender behind it. A stream that closes
 * without ending (a dropped connection that raised no error) fails the flow rather than hanging
 * it; `label` names the stream in that error.
 */
export function fromReadable(open: () => Readable, label = 'a stream'): Flow<Buffer> {
  return (requests) =>
    new Observable<Buffer>((subscriber) => {
      let stream: Readable;
      try {
        stream = open();
      } catch (error) {
        subscriber.error(error);
        return;
      }
      let ended = false;
      const outlet = new Outlet<Buffer>(subscriber, () => {
        while (outlet.wanted > 0 && !subscriber.closed) {
          const chunk = stream.read() as Buffer | null;
          if (chunk === null) break;
          outlet.push(chunk);
        }
        if (ended) subscriber.complete();
      });
      const onReadable = () => outlet.drain();
      const onEnd = () => {
        ended = true;
        outlet.drain();
      };
      const onError = (error: Error) => subscriber.error(error);
      const onClose = () => {
        if (!ended) subscriber.error(new RxtrainError('E_IO', `${label}: closed before its end`));
      };
      stream.on('readable', onReadable);
      stream.on('end', onEnd);
      stream.on('error', onError);
      stream.on('close', onClose);
      const sub = requests.subscribe((n) => outlet.add(n));
      return () => {
        sub.unsubscribe();
        stream.off('readable', onReadable);
        stream.off('end', onEnd);
        stream.off('close', onClose);
        // Keep a listener: destroying may still emit an error, which must not crash the process.
        stream.off('error', onError);
        stream.on('error', () => {});
        stream.destroy();
      };
    });
}
