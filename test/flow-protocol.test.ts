/**
 * The demand check every consuming operator shares (`Upstream` in src/flow/protocol.ts): a
 * producer that emits an item nobody requested fails the flow with `E_PROTOCOL` wherever it is
 * consumed, and is cancelled at that item, so it cannot keep filling a queue that was promised to
 * be bounded. Each test counts what the producer emitted, outside the code under test.
 */
import test from 'ava';
import { Observable } from 'rxjs';
import { concatFlows, consume, edge, type Flow, fromArray, transform } from '../src/flow/index.js';
import { Upstream } from '../src/flow/protocol.js';
import type { RxtrainError } from '../src/util/errors.js';
import { subscribeManually } from './helpers/index.js';

/** A producer that ignores demand: every request gets `burst` items, for as long as it is subscribed. */
function greedySource(burst: number) {
  const log = { emitted: 0, tornDown: 0 };
  const flow: Flow<number> = (requests) =>
    new Observable<number>((subscriber) => {
      const sub = requests.subscribe(() => {
        for (let i = 0; i < burst && !subscriber.closed; i++) {
          log.emitted++;
          subscriber.next(i);
        }
      });
      return () => {
        log.tornDown++;
        sub.unsubscribe();
      };
    });
  return { flow, log };
}

function isProtocolError(t: { is(a: unknown, b: unknown): void }, error: unknown, message: string) {
  t.is((error as RxtrainError).code, 'E_PROTOCOL');
  t.is((error as RxtrainError).message, message);
}

test('transform: the first item past its one-at-a-time request fails the stage and cancels upstream', (t) => {
  const source = greedySource(3);
  const sink = subscribeManually(
    transform<number, number>(source.flow, () => ({
      next(item, out) {
        out.push(item);
      },
    })),
  );
  sink.demand.request(1);
  isProtocolError(t, sink.error, 'an upstream stage emitted an item nobody requested');
  t.is(source.log.emitted, 2, 'asked for one; the second is the violation and the last one emitted');
  t.is(source.log.tornDown, 1);
  t.false(sink.completed);
});

test('edge: an item past the capacity it asked for fails the edge and cancels upstream', (t) => {
  const source = greedySource(5);
  const sink = subscribeManually(edge(source.flow, { items: 2 }));
  isProtocolError(t, sink.error, 'a stage emitted past its edge capacity');
  t.is(source.log.emitted, 3, 'asked for two; the third is the violation');
  t.is(source.log.tornDown, 1);
  t.deepEqual(sink.items, []);
});

test('concatFlows: a later flow is held to the demand carried over to it', (t) => {
  const source = greedySource(3);
  const sink = subscribeManually(concatFlows([fromArray([7]), source.flow]));
  sink.demand.request(2);
  t.deepEqual(sink.items, [7, 0], 'the first flow met one, the greedy one was asked for the other');
  isProtocolError(t, sink.error, 'a flow emitted an item nobody requested');
  t.is(source.log.emitted, 2);
  t.is(source.log.tornDown, 1);
});

test('consume: a flow emitting past the prefetch rejects done and is cancelled', async (t) => {
  const source = greedySource(4);
  let handled = 0;
  const run = consume(
    source.flow,
    () => {
      handled++;
    },
    { prefetch: 2 },
  );
  t.is(source.log.emitted, 3, 'asked for two; the third is the violation');
  t.is(source.log.tornDown, 1, 'cancelled at once, not when done settles');
  const error = await t.throwsAsync(run.done);
  isProtocolError(t, error, 'a consumed flow emitted an item nobody requested');
  t.is(handled, 0, 'the failure came first, so the queued items were never handed to the handler');
});

test('Upstream: an item emitted during subscribe, before any request, is caught and cancelled too', (t) => {
  let tornDown = 0;
  let emitted = 0;
  const eager: Flow<number> = () =>
    new Observable<number>((subscriber) => {
      for (let i = 0; i < 3 && !subscriber.closed; i++) {
        emitted++;
        subscriber.next(i);
      }
      return () => tornDown++;
    });
  const seen = { items: [] as number[], errors: [] as unknown[] };
  const upstream = new Upstream<number>('nobody asked');
  upstream.subscribe(eager, {
    next: (item) => seen.items.push(item),
    error: (error) => seen.errors.push(error),
    complete: () => t.fail('the eager producer never completes'),
  });
  t.deepEqual(seen.items, []);
  t.is(seen.errors.length, 1);
  isProtocolError(t, seen.errors[0], 'nobody asked');
  t.is(tornDown, 1, 'cancelled as soon as subscribe() returned a subscription to cancel');
  t.is(emitted, 3, 'the producer ran its whole synchronous subscribe; only its output was refused');
});

test('Upstream: outstanding counts requests before asking, so a synchronous producer is in time', (t) => {
  const items: number[] = [];
  let completed = false;
  const upstream = new Upstream<number>('nobody asked');
  upstream.subscribe(fromArray([1, 2, 3]), {
    next: (item) => items.push(item),
    error: (error) => t.fail(String(error)),
    complete: () => {
      completed = true;
    },
  });
  upstream.request(2);
  t.deepEqual(items, [1, 2]);
  t.is(upstream.outstanding, 0);
  upstream.request(0);
  t.is(upstream.outstanding, 0, 'a request of nothing asks for nothing');
  upstream.request(5);
  t.deepEqual(items, [1, 2, 3]);
  t.true(completed);
  t.is(upstream.outstanding, 4);
});
