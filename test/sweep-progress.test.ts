/** The sweep's progress display, fed events by hand: plain lines off a terminal, a redrawn block on one. */
import test from 'ava';
import type { RxtrainEvent } from '../src/pipeline/events.js';
import { SweepProgress } from '../src/progress/sweepProgress.js';
import { builtinStages } from '../src/stages/index.js';
import type { SweepEvent, SweepEventInput } from '../src/sweep/sweepEvents.js';

let seq = 0;
const at = (elapsedMs: number, e: SweepEventInput) =>
  ({ ...e, elapsedMs, time: '', seq: seq++ }) as SweepEvent;
const trial = (e: Record<string, unknown>) =>
  ({ time: '', elapsedMs: 0, seq: 0, ...e }) as unknown as RxtrainEvent;

const started = (parallel: number, scheduler: 'asha' | null = null) =>
  at(0, {
    type: 'sweep-started',
    name: 'demo',
    sweepDir: '/s',
    method: 'grid',
    scheduler,
    metric: 'val.accuracy',
    mode: 'max',
    parallel,
    planned: 4,
    counts: { planned: 3, done: 1 },
    added: 0,
    resumed: true,
    varying: ['sgd.lr'],
  });
const trialStarted = (id: string, lr: number) =>
  at(10, {
    type: 'trial-started',
    trial: id,
    params: { 'sgd.lr': lr, 'sgd.epochs': 1 },
    action: 'run',
    was: 'planned',
    attempt: 1,
    pid: 1,
  });

test('off a terminal: one line per trial and the sweep’s line, counting a resumed sweep’s earlier trials', (t) => {
  let out = '';
  const now = 0;
  const p = new SweepProgress((s) => (out += s), {
    stages: builtinStages,
    tty: false,
    color: false,
    intervalMs: 1000,
    now: () => now,
  });
  p.onSweepEvent(started(2));
  p.onSweepEvent(trialStarted('aaaaaaaaaa', 0.1));
  p.onSweepEvent(
    at(1500, {
      type: 'trial-finished',
      trial: 'aaaaaaaaaa',
      status: 'done',
      exitCode: 0,
      metric: 0.91,
      steps: 100,
      stepsSpent: 100,
      durationMs: 1500,
    }),
  );
  p.onSweepEvent(trialStarted('bbbbbbbbbb', 0.3));
  p.onSweepEvent(
    at(2000, {
      type: 'trial-finished',
      trial: 'bbbbbbbbbb',
      status: 'failed',
      exitCode: 1,
      stepsSpent: 2,
      durationMs: 400,
      error: 'E_DATA: sgd: the loss became NaN at step 2; lower sgd.lr',
    }),
  );
  p.close();
  const lines = out.trimEnd().split('\n');
  t.deepEqual(lines, [
    '[   0ms] sweep demo: 4 trials, 1 finished before; grid, 2 at once; ranked by val.accuracy (max)',
    '[  10ms] trial aaaaaaaaaa started: sgd.lr=0.1',
    '[  10ms] sweep demo: 1/4 finished · 1 running',
    '[  1.5s] trial aaaaaaaaaa done  val.accuracy 0.9100  100 steps  1.5s',
    '[  10ms] trial bbbbbbbbbb started: sgd.lr=0.3',
    '[  2.0s] trial bbbbbbbbbb failed: E_DATA: sgd: the loss became NaN at step 2; lower sgd.lr',
    '[  2.0s] sweep demo: 3/4 finished · 1 failed · best val.accuracy 0.9100 (aaaaaaaaaa) · ETA 1.5s',
  ]);
});

test('on a terminal: a line per running trial (its step from the trainer’s own progress) and the total, redrawn in place', (t) => {
  let out = '';
  const p = new SweepProgress((s) => (out += s), {
    stages: builtinStages,
    tty: true,
    color: false,
    intervalMs: 1000,
    redrawMs: 0,
    now: () => 0,
  });
  p.onSweepEvent(started(2));
  p.onSweepEvent(trialStarted('aaaaaaaaaa', 0.1));
  p.onTrialEvent('aaaaaaaaaa', trial({ type: 'stage-started', stage: 'sgd', stageType: 'sgd', index: 5 }));
  p.onTrialEvent(
    'aaaaaaaaaa',
    trial({
      type: 'stage-progress',
      stage: 'sgd',
      step: 250,
      totalSteps: 1000,
      epoch: 0.5,
      loss: 0.4,
      lr: 0.1,
    }),
  );
  p.onTrialEvent(
    'aaaaaaaaaa',
    trial({
      type: 'train',
      step: 250,
      epoch: 0.5,
      samples: 2500,
      loss: 0.4321,
      accuracy: 0.8,
      lr: 0.1,
      samplesPerSec: 1,
    }),
  );
  p.onTrialEvent(
    'aaaaaaaaaa',
    trial({ type: 'eval', split: 'val', step: 200, epoch: 0.4, examples: 10, accuracy: 0.875, loss: 0.5 }),
  );
  const frames = out.split('\x1b[');
  const last = frames.at(-1)!.replace(/^\d+F\x1b\[J|^J/, '');
  t.true(out.includes('\x1b[2F\x1b[J'), 'the block is redrawn in place');
  t.deepEqual(last.trimEnd().split('\n').slice(-2), [
    '▸ aaaaaaaaaa  sgd.lr=0.1  step 250/1,000  loss 0.4321  val.accuracy 0.8750',
    'sweep demo: 1/4 finished · 1 running',
  ]);
});
