/** transform(): output pushed from asynchronous code is delivered without waiting for the handler. */
import test from 'ava';
import { Observable } from 'rxjs/internal/Observable';
import { consume, type Flow, fromArray, transform } from '../src/flow/index.js';

test('an item pushed in a promise continuation reaches downstream while the handler still waits', async (t) => {
  // Like the updater: after a pause it pushes a snapshot and waits until the evaluator has seen it.
  let seen: (() => void) | undefined;
  const seenPromise = new Promise<void>((resolve) => {
    seen = resolve;
  });
  const flow = transform<number, string>(fromArray([1]), () => ({
    next: (_item, out) =>
      new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        out.push('snapshot');
        return seenPromise;
      }),
  }));
  const received: string[] = [];
  const run = consume(flow, (item) => {
    received.push(item);
    seen?.();
  }).done;
  const outcome = await Promise.race([
    run.then(() => 'done'),
    new Promise((resolve) => setTimeout(() => resolve('deadlock'), 2000)),
  ]);
  t.is(outcome, 'done');
  t.deepEqual(received, ['snapshot']);
});

test('an item pushed from a timer callback is delivered, and end() from one completes the flow', async (t) => {
  const flow = transform<number, number>(fromArray([1, 2]), () => ({
    next: (item, out) => {
      setTimeout(() => out.push(item * 10), 5);
    },
    complete: (out) =>
      new Promise<void>((resolve) =>
        setTimeout(() => {
          out.push(99);
          out.end();
          resolve();
        }, 20),
      ),
  }));
  const received: number[] = [];
  await consume(flow, (item) => {
    received.push(item);
  }).done;
  t.deepEqual(received, [10, 20, 99]);
});

test('TrainingControl: a verdict given before the producer asks for it still resolves its wait', async (t) => {
  const { TrainingControl } = await import('../src/pipeline/training.js');
  const control = new TrainingControl();
  control.judge();
  control.judge();
  control.verdict(50);
  control.verdict(50, 'enough');
  await control.verdicts(50); // both verdicts came first: must not hang
  const later = control.verdicts(75)!;
  let done = false;
  later.then(() => {
    done = true;
  });
  control.verdict(75);
  await Promise.resolve();
  t.false(done, 'one of two judges is not enough');
  control.verdict(75);
  await later;
  t.deepEqual(control.stopRequest, { step: 50, reason: 'enough' });
});

test('wake() called inside next() does not re-enter next() before it returns', async (t) => {
  // untar does this when tar-stream announces an entry synchronously during a write.
  let depth = 0;
  let deepest = 0;
  // A plain source, as a user might write one: its first item arrives later (so next() runs
  // outside any delivery pass), the rest synchronously inside request(), with no guard of its own
  // against being asked again while it emits.
  const source: Flow<number> = (requests) =>
    new Observable<number>((subscriber) => {
      let next = 1;
      const emit = (n: number) => {
        for (let i = 0; i < n && next <= 4; i++) subscriber.next(next++);
        if (next > 4) subscriber.complete();
      };
      return requests.subscribe((n) => {
        if (next === 1) setImmediate(() => emit(n));
        else emit(n);
      });
    });
  const flow = transform<number, number>(source, () => ({
    next: (item, out) => {
      depth++;
      deepest = Math.max(deepest, depth);
      out.push(item);
      out.wake();
      depth--;
    },
  }));
  const received: number[] = [];
  await consume(
    flow,
    (item) => {
      received.push(item);
    },
    { prefetch: 8 },
  ).done;
  t.deepEqual(received, [1, 2, 3, 4]);
  t.is(deepest, 1);
});
