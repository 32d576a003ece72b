import test from 'ava';
import type { RxtrainEvent, RxtrainEventInput } from '../src/pipeline/events.js';
import { defineStage, type ProgressView } from '../src/pipeline/stage.js';
import { ProgressRenderer, type RendererOptions } from '../src/progress/renderer.js';
import type { FetchCounters } from '../src/stages/fetch.js';
import { builtinStages } from '../src/stages/index.js';
import type { SgdCounters } from '../src/stages/sgd.js';
import { duration } from '../src/util/format.js';

/** A clock and timer queue the test moves by hand. */
class FakeTime {
  ms = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now = () => this.ms;
  setTimer = (fn: () => void, ms: number) => {
    const timer = { at: this.ms + ms, fn, live: true };
    this.timers.push(timer);
    return () => {
      timer.live = false;
    };
  };
  advance(ms: number): void {
    const until = this.ms + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.ms = due.at;
      due.live = false;
      due.fn();
    }
    this.ms = until;
  }
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }
}

/** A renderer writing into a string, driven by events stamped with the fake clock. */
function harness(options: Partial<RendererOptions> & { tty: boolean }) {
  const time = new FakeTime();
  let out = '';
  let seq = 0;
  const renderer = new ProgressRenderer((text) => (out += text), {
    stages: builtinStages,
    color: false,
    intervalMs: 2000,
    now: time.now,
    setTimer: time.setTimer,
    ...options,
  });
  const emit = (input: RxtrainEventInput) =>
    renderer.onEvent({
      ...input,
      time: new Date(Date.UTC(2026, 0, 1) + time.ms).toISOString(),
      elapsedMs: time.ms,
      seq: seq++,
    } as RxtrainEvent);
  return {
    time,
    renderer,
    emit,
    get out() {
      return out;
    },
  };
}

const STAGES = [
  ['fetch', 'fetch'],
  ['untar', 'untar'],
  ['decodeIdx', 'decodeIdx'],
  ['normalise', 'normalise'],
  ['shuffle', 'shuffle'],
  ['sgd', 'sgd'],
  ['evaluate', 'evaluate'],
] as const;

/**
 * A synthetic run shaped like the default one: a 4 MB download in 1 s, decoding, 3,000 steps at
 * 1,000 steps/s with a train event every 100 steps and an evaluation every 1,000, then the end.
 */
function syntheticRun(h: ReturnType<typeof harness>, options: { warnAt?: number } = {}): void {
  h.emit({ type: 'run-started', run: 'r', config: 'c', runDir: '/tmp/r', version: '0' });
  // Subscribing travels upstream: the last stage starts first.
  for (const [index, [id, type]] of [...STAGES.entries()].reverse())
    h.emit({ type: 'stage-started', stage: id, stageType: type, index });
  const total = 4 * 1024 * 1024;
  for (let i = 1; i <= 10; i++) {
    h.time.advance(100);
    h.emit({
      type: 'stage-progress',
      stage: 'fetch',
      file: 'train-images-idx3-ubyte',
      bytes: (total * i) / 10,
      total,
      rate: total,
      edge: { depth: 2, capacity: 8, maxDepth: 3, bytes: 0 },
    });
    h.emit({
      type: 'stage-progress',
      stage: 'decodeIdx',
      records: 7000 * i,
      file: 'train-images-idx3-ubyte',
    });
  }
  for (const id of ['fetch', 'untar', 'decodeIdx', 'normalise'])
    h.emit({ type: 'stage-finished', stage: id, durationMs: 1000, items: 100 });
  h.emit({ type: 'stage-progress', stage: 'shuffle', population: 60000, heldOut: 0, mode: 'permutation' });
  h.emit({ type: 'eval', split: 'test', step: 0, epoch: 0, examples: 10000, accuracy: 0.1, loss: 2.3 });
  for (let step = 100; step <= 3000; step += 100) {
    h.time.advance(100);
    h.emit({
      type: 'train',
      step,
      epoch: step / 1000,
      samples: step * 64,
      loss: 1 / (step / 100),
      accuracy: 0.9,
      lr: 0.1,
      samplesPerSec: 64000,
    });
    h.emit({ type: 'stage-progress', stage: 'sgd', step, totalSteps: 3000, epoch: step / 1000, loss: 0.5 });
    if (step % 1000 === 0)
      h.emit({
        type: 'eval',
        split: 'test',
        step,
        epoch: step / 1000,
        examples: 10000,
        accuracy: 0.9 + step / 100000,
        loss: 0.3,
      });
    if (step === options.warnAt) h.emit({ type: 'warning', code: 'W_TEST', message: 'something odd' });
  }
  h.emit({ type: 'stage-finished', stage: 'sgd', durationMs: 3000, items: 3 });
  h.emit({ type: 'stage-finished', stage: 'evaluate', durationMs: 3000, items: 4 });
  h.emit({ type: 'stage-finished', stage: 'shuffle', durationMs: 3000, items: 700, stopped: true });
  h.emit({ type: 'checkpoint', step: 3000, reason: 'final', file: '/tmp/r/checkpoints/x' });
  h.emit({ type: 'run-finished', status: 'completed', steps: 3000, durationMs: 4000, exitCode: 0 });
}

/**
 * A minimal terminal: printable text, newline, and the escapes the renderer uses (cursor to the
 * start of a line n up, erase to the end of the screen, erase the line, colours). Lines longer
 * than `columns` wrap, as a real terminal's do.
 */
function screen(output: string, columns = 1000): string[] {
  const rows: string[] = [''];
  let row = 0;
  const re = /\x1b\[(\d*)([A-Za-z])|([^\x1b])/gsu;
  for (const m of output.matchAll(re)) {
    if (m[3] !== undefined) {
      if (m[3] === '\n') {
        row++;
        rows[row] ??= '';
        continue;
      }
      if ([...rows[row]!].length >= columns) {
        row++;
        rows[row] ??= '';
      }
      rows[row] += m[3];
      continue;
    }
    const n = m[1] === '' ? 1 : Number(m[1]);
    switch (m[2]) {
      case 'F':
        row = Math.max(0, row - n);
        rows[row] = '';
        break;
      case 'J':
        rows.length = row + 1;
        break;
      case 'K':
        rows[row] = '';
        break;
      case 'm':
        break;
      default:
        throw new Error(`unexpected escape ${m[0]}`);
    }
  }
  while (rows.length && rows.at(-1) === '') rows.pop();
  return rows;
}

test('off a TTY: plain lines with every stage’s numbers and not one escape byte', (t) => {
  const h = harness({ tty: false, color: true, intervalMs: 500 });
  syntheticRun(h, { warnAt: 1500 });
  const out = h.out;
  t.false(out.includes('\x1b'), 'no ESC byte anywhere');
  t.false(/[\r\b]/.test(out), 'no carriage returns or backspaces either');
  t.regex(out, /fetch: 410 KB \/ 4\.0 MB {2}10% {2}4\.0 MB\/s {2}train-images-idx3-ubyte/);
  t.regex(out, /\| decodeIdx: [\d,]+ records decoded/);
  t.regex(out, /\[ {2}1\.0s\] fetch finished in 1\.0s \(100 items\)/);
  t.regex(out, /eval test at step 1,000: accuracy 0\.9100, loss 0\.3000/);
  t.regex(
    out,
    /sgd: step \d[\d,]*\/3,000 {2}epoch \d\.\d\d {2}loss \d\.\d{4} {2}64,000 samples\/s {2}ETA \d/,
  );
  t.regex(out, /warning: something odd/);
  t.regex(out, /checkpoint at step 3,000 \(final\)/);
  t.regex(out, /run completed after 3,000 steps in 4\.0s\n$/);
  t.false(out.includes('shuffle finished'), 'a stage stopped by the end of training is not "finished"');
  for (const line of out.trimEnd().split('\n')) t.regex(line, /^\[[ \d.]+(ms|s)\] /, line);
});

test('off a TTY: status lines are throttled to intervalMs, evaluations do not reset the throttle', (t) => {
  const h = harness({ tty: false, intervalMs: 2000 });
  syntheticRun(h);
  const statusLines = h.out.split('\n').filter((l) => / (fetch|sgd): /.test(l));
  // 4 s of events every 100 ms: one status at 0.1 s, 2.1 s, and the final one at the end.
  t.is(statusLines.length, 3, statusLines.join('\n'));
  const times = statusLines.map((l) => l.slice(1, 7).trim());
  t.deepEqual(times, ['100ms', '2.1s', '4.0s']);
  const evalLines = h.out.split('\n').filter((l) => l.includes('] eval test'));
  t.is(evalLines.length, 4, 'every evaluation gets its line');
});

test('on a TTY: the frame is redrawn in place, one line per active stage, done stages on one line', (t) => {
  const h = harness({ tty: true, redrawMs: 100 });
  syntheticRun(h, { warnAt: 1500 });
  const rows = screen(h.out);
  t.deepEqual(rows, [
    'warning: something odd',
    'checkpoint at step 3,000 (final)',
    '✓ fetch 1.0s · untar 1.0s · decodeIdx 1.0s · normalise 1.0s · shuffle 3.0s',
    '✓ sgd        step 3,000/3,000  epoch 3.00  loss 0.0333  64,000 samples/s',
    '✓ evaluate   test accuracy 0.9300 loss 0.3000 @ step 3,000',
  ]);
  t.true(h.out.includes('\x1b['), 'it does redraw with escapes');
  t.false(/\x1b\[[\d;]*m/.test(h.out), 'no colour when color is off (NO_COLOR)');
  t.is(h.time.pending, 0, 'no redraw left pending after the run');
});

test('on a TTY mid-run: bytes and rate, records, step, epoch, loss, samples/s, ETA and the last evaluation', (t) => {
  const h = harness({ tty: true, redrawMs: 100 });
  h.emit({ type: 'run-started', run: 'r', config: 'c', runDir: '/tmp/r', version: '0' });
  for (const [index, [id, type]] of [...STAGES.entries()].reverse())
    h.emit({ type: 'stage-started', stage: id, stageType: type, index });
  h.time.advance(500);
  h.emit({
    type: 'stage-progress',
    stage: 'fetch',
    file: 'a.gz',
    bytes: 3 * 1048576,
    total: 12 * 1048576,
    rate: 6 * 1048576,
  });
  h.emit({ type: 'stage-progress', stage: 'decodeIdx', records: 12345, testExamples: 10000 });
  h.time.advance(100);
  t.deepEqual(screen(h.out).slice(0, 3), [
    '▸ fetch      3.0 MB / 12 MB  25%  6.0 MB/s  a.gz',
    '▸ untar      waiting for input',
    '▸ decodeIdx  12,345 records decoded (complete: test 10,000)',
  ]);
  for (const id of ['fetch', 'untar', 'decodeIdx', 'normalise'])
    h.emit({ type: 'stage-finished', stage: id, durationMs: 600, items: 1 });
  // 1,000 steps in a second by the events' clock, 3,000 to go.
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 0, totalSteps: 4000, epoch: 0, loss: 2.3 });
  h.time.advance(1000);
  h.emit({
    type: 'train',
    step: 1000,
    epoch: 1.25,
    samples: 64000,
    loss: 0.41,
    accuracy: 0.9,
    lr: 0.1,
    samplesPerSec: 64000,
  });
  h.emit({
    type: 'eval',
    split: 'test',
    step: 1000,
    epoch: 1.25,
    examples: 10000,
    accuracy: 0.9087,
    loss: 0.3334,
  });
  h.time.advance(100);
  const rows = screen(h.out);
  t.deepEqual(rows, [
    '✓ fetch 600ms · untar 600ms · decodeIdx 600ms · normalise 600ms',
    '▸ shuffle    collecting',
    '▸ sgd        step 1,000/4,000  epoch 1.25  loss 0.4100  64,000 samples/s  ETA 3.0s',
    '▸ evaluate   test accuracy 0.9087 loss 0.3334 @ step 1,000',
  ]);
  h.renderer.close();
  t.is(h.time.pending, 0);
});

test('on a TTY: redraws are throttled and a late change is drawn by a timer', (t) => {
  const h = harness({ tty: true, redrawMs: 100 });
  h.emit({ type: 'stage-started', stage: 'sgd', stageType: 'sgd', index: 5 });
  const frames = () => h.out.split('\x1b[J').length;
  const before = frames();
  h.time.advance(10);
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 1, totalSteps: 10 });
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 2, totalSteps: 10 });
  t.is(frames(), before, 'no redraw within redrawMs');
  t.is(h.time.pending, 1, 'one redraw scheduled, not one per event');
  h.time.advance(100);
  t.is(frames(), before + 1);
  t.deepEqual(screen(h.out), ['▸ sgd        step 2/10']);
});

test('on a TTY: lines are cut to the terminal width so the frame never wraps and smears', (t) => {
  const columns = 40;
  const h = harness({ tty: true, redrawMs: 100, columns: () => columns });
  syntheticRun(h, { warnAt: 1500 });
  const rows = screen(h.out, columns);
  t.is(rows.length, 5, rows.join('\n'));
  for (const row of rows) t.true([...row].length < columns, row);
  t.regex(rows[3]!, /^✓ sgd {8}step 3,000\/3,000 {2}epoch 3…$/);

  // Without cutting, the same run at that width leaves stale lines on screen.
  const uncut = harness({ tty: true, redrawMs: 100 });
  syntheticRun(uncut, { warnAt: 1500 });
  t.true(screen(uncut.out, columns).length > rows.length);
});

test('on a TTY with colour: marks and warnings coloured, and text is unchanged underneath', (t) => {
  const h = harness({ tty: true, color: true, redrawMs: 100 });
  syntheticRun(h, { warnAt: 1500 });
  t.regex(h.out, /\x1b\[32m✓\x1b\[0m/);
  t.regex(h.out, /\x1b\[33mwarning: something odd\x1b\[0m/);
  const plain = harness({ tty: true, redrawMs: 100 });
  syntheticRun(plain, { warnAt: 1500 });
  t.deepEqual(screen(h.out), screen(plain.out));
});

test('nothing is drawn after run-finished or close, and close draws a pending frame', (t) => {
  const h = harness({ tty: true, redrawMs: 100 });
  h.emit({ type: 'stage-started', stage: 'sgd', stageType: 'sgd', index: 5 });
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 5, totalSteps: 10 });
  t.is(h.time.pending, 1);
  h.renderer.close();
  t.deepEqual(screen(h.out), ['▸ sgd        step 5/10']);
  const length = h.out.length;
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 6, totalSteps: 10 });
  h.time.advance(1000);
  t.is(h.out.length, length);
});

test('durations read naturally', (t) => {
  t.is(duration(450), '450ms');
  t.is(duration(4400), '4.4s');
  t.is(duration(125_000), '2m05s');
  t.is(duration(3_725_000), '1h02m');
});

test('stages are drawn in the config\u2019s order whatever order they start in (a cache replay starts the data stages last)', (t) => {
  const h = harness({ tty: true, redrawMs: 0 });
  // Downstream subscribes first; a replay then reports the data stages in pipeline order.
  for (const i of [6, 5, 4, 0, 1, 2, 3]) {
    const [id, type] = STAGES[i]!;
    h.emit({ type: 'stage-started', stage: id, stageType: type, index: i });
  }
  for (const i of [0, 1, 2, 3])
    h.emit({ type: 'stage-finished', stage: STAGES[i]![0], durationMs: 80, items: 10 });
  h.time.advance(200);
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 1, totalSteps: 10 });
  t.regex(h.out, /fetch 80ms · untar 80ms · decodeIdx 80ms · normalise 80ms/);
});

/** A user's stage that trains, in rounds: nothing in the renderer knows its type. */
interface DistillCounters {
  round: number;
  rounds: number;
  agreement: number;
}
const distillStage = defineStage({
  type: 'distill',
  summary: 'a user stage that trains in rounds',
  settings: { safeParse: (value: unknown) => ({ success: true as const, data: value }) },
  create: () => (input) => input,
  describeProgress: (c: Partial<DistillCounters>): ProgressView => ({
    text: `round ${c.round ?? 0} of ${c.rounds ?? '?'}, agreement ${((c.agreement ?? 0) * 100).toFixed(1)}%`,
    idle: 'warming up',
    steps: c.round === undefined ? undefined : { done: c.round, total: c.rounds },
    keep: true,
  }),
});

/** The teacher reports 10 rounds a second, 20 of 40 done after the second report, then finishes. */
function distillRun(h: ReturnType<typeof harness>): { waiting: string[]; running: string[]; done: string[] } {
  h.emit({ type: 'stage-started', stage: 'teacher', stageType: 'distill', index: 0 });
  h.time.advance(100);
  const waiting = screen(h.out);
  h.emit({ type: 'stage-progress', stage: 'teacher', round: 10, rounds: 40, agreement: 0.5 });
  h.time.advance(1000);
  h.emit({ type: 'stage-progress', stage: 'teacher', round: 20, rounds: 40, agreement: 0.75 });
  h.time.advance(100);
  const running = screen(h.out);
  h.emit({ type: 'stage-finished', stage: 'teacher', durationMs: 1200, items: 1 });
  h.time.advance(100);
  return { waiting, running, done: screen(h.out) };
}

test('a user stage type draws its own line, and its view gives it the roles: ETA, status line, kept once done', (t) => {
  const h = harness({ tty: true, redrawMs: 100, stages: [...builtinStages, distillStage] });
  const frames = distillRun(h);
  t.deepEqual(frames.waiting, ['▸ teacher    warming up']);
  // 10 rounds in the last second by the events' clock, 20 to go.
  t.deepEqual(frames.running, ['▸ teacher    round 20 of 40, agreement 75.0%  ETA 2.0s']);
  t.deepEqual(frames.done, ['✓ teacher    round 20 of 40, agreement 75.0%'], 'kept, without an ETA');

  const piped = harness({ tty: false, intervalMs: 0, stages: [...builtinStages, distillStage] });
  distillRun(piped);
  t.regex(piped.out, /\] teacher: round 20 of 40, agreement 75\.0% {2}ETA 2\.0s\n/);
});

test('a stage type the renderer was not given, and counters a stage cannot read, are drawn as they are', (t) => {
  const h = harness({ tty: true, redrawMs: 100 });
  h.emit({ type: 'stage-started', stage: 'sub', stageType: 'subset', index: 0 });
  h.emit({ type: 'stage-started', stage: 'sgd', stageType: 'sgd', index: 1 });
  h.time.advance(100);
  t.deepEqual(screen(h.out), ['▸ sub        waiting for input', '▸ sgd        waiting for input']);
  h.emit({
    type: 'stage-progress',
    stage: 'sub',
    kept: 1500,
    split: 'train',
    edge: { depth: 2, capacity: 8, maxDepth: 2, bytes: 0 },
  });
  // Not sgd's counters (a log from some other version of it): listed, not a crash.
  h.emit({ type: 'stage-progress', stage: 'sgd', step: 'three', epoch: 'two' });
  h.time.advance(100);
  t.deepEqual(screen(h.out), [
    '▸ sub        kept=1500 split=train  [queue 2/8]',
    '▸ sgd        step=three epoch=two',
  ]);
});

// Checked by the compiler, not at run time: a stage's counters are typed where it reports them and
// where it reads them, so a counter renamed on one side only does not compile.
// @ts-expect-error fetch reports `bytes`, not `byteCount`
void ({ byteCount: 1 } satisfies Partial<FetchCounters>);
// @ts-expect-error sgd reports `step`, not `steps`
void ({ steps: 1 } satisfies Partial<SgdCounters>);
