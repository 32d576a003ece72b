/**
 * Progress on the terminal, drawn only from the event stream (never computed separately), so what
 * is shown and what is logged agree: feeding the same events.ndjson back in redraws the same run.
 *
 * On a TTY: one line per active stage, redrawn in place at most every `redrawMs`, plus one line
 * listing the stages that are done. Lines are cut to the terminal's width, because a line that
 * wraps would make the cursor-up count wrong and smear every later frame down the screen.
 *
 * Off a TTY (a pipe, a log file): plain lines with no escape codes at all — a status line at most
 * every `intervalMs`, and one line per evaluation, finished stage, checkpoint and warning, each
 * prefixed with the run's elapsed time.
 */
import type { RxtrainEvent } from '../pipeline/events.js';
import { count, duration, formatBytes } from './format.js';

export interface RendererOptions {
  /** Redraw in place with ANSI escapes. */
  tty: boolean;
  /** Colour (only on a TTY; the CLI turns it off when NO_COLOR is set). */
  color: boolean;
  /** Off a TTY: minimum ms between status lines. */
  intervalMs: number;
  /** On a TTY: minimum ms between redraws (default 100). */
  redrawMs?: number;
  /** On a TTY: the terminal's width in columns, asked at each redraw (it may be resized). */
  columns?: () => number | undefined;
  /** Monotonic ms; throttling only (rates come from the events' own `elapsedMs`). */
  now?: () => number;
  /** Run `fn` after `ms`; returns a cancel function. Tests replace it to step time by hand. */
  setTimer?: (fn: () => void, ms: number) => () => void;
}

interface StageView {
  id: string;
  type: string;
  /** Position in the pipeline (absent in logs from before it was recorded). */
  index?: number;
  counters: Record<string, unknown>;
  done: boolean;
  durationMs?: number;
}

interface TrainView {
  step: number;
  epoch: number;
  loss: number;
  samplesPerSec: number;
}

interface EvalView {
  step: number;
  accuracy: number;
  loss: number;
}

/** How far back the step rate for the ETA looks: long enough to smooth, short enough to follow. */
const RATE_WINDOW_MS = 10_000;
/** Bounds the observations kept for the rate (the window is also bounded in time). */
const RATE_SAMPLES = 64;

const ESC = '\x1b[';
const SGR = { green: 32, cyan: 36, yellow: 33, dim: 2 } as const;

export class ProgressRenderer {
  private readonly stages = new Map<string, StageView>();
  private readonly lastEval = new Map<string, EvalView>();
  private train: TrainView | undefined;
  /** (step, elapsedMs) of the updater, oldest first, for the step rate behind the ETA. */
  private readonly steps: { step: number; at: number }[] = [];
  private elapsedMs = 0;
  private drawnLines = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastStatus = Number.NEGATIVE_INFINITY;
  private cancelPending: (() => void) | undefined;
  private finished = false;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: RendererOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        // A pending redraw must not keep the process alive after the run.
        timer.unref?.();
        return () => clearTimeout(timer);
      });
  }

  onEvent = (event: RxtrainEvent): void => {
    if (this.finished) return;
    this.elapsedMs = event.elapsedMs;
    switch (event.type) {
      case 'stage-started':
        this.stages.set(event.stage, {
          id: event.stage,
          type: event.stageType,
          index: event.index,
          counters: {},
          done: false,
        });
        break;
      case 'stage-progress': {
        const view = this.stages.get(event.stage);
        if (!view) break;
        const { type: _t, stage: _s, time: _time, elapsedMs: _e, seq: _q, ...counters } = event;
        Object.assign(view.counters, counters);
        if (view.type === 'sgd' && typeof counters['step'] === 'number')
          this.observeStep(counters['step'], event.elapsedMs);
        break;
      }
      case 'stage-finished': {
        const view = this.stages.get(event.stage);
        if (view) {
          view.done = true;
          view.durationMs = event.durationMs;
        }
        // A stage stopped by the ones after it (the endless sampler) did not finish anything.
        if (!this.options.tty && !event.stopped)
          this.line(`${event.stage} finished in ${duration(event.durationMs)} (${count(event.items)} items)`);
        break;
      }
      case 'train':
        this.train = {
          step: event.step,
          epoch: event.epoch,
          loss: event.loss,
          samplesPerSec: event.samplesPerSec,
        };
        this.observeStep(event.step, event.elapsedMs);
        break;
      case 'eval':
        this.lastEval.set(event.split, { step: event.step, accuracy: event.accuracy, loss: event.loss });
        if (!this.options.tty) {
          this.line(
            `eval ${event.split} at step ${count(event.step)}: accuracy ${event.accuracy.toFixed(4)}, loss ${event.loss.toFixed(4)}`,
          );
        }
        break;
      case 'checkpoint':
        this.message(`checkpoint at step ${count(event.step)} (${event.reason})`, SGR.dim);
        return;
      case 'warning':
        this.message(`warning: ${event.message}`, SGR.yellow);
        return;
      case 'run-finished':
        this.finish(event.status, event.steps, event.durationMs);
        return;
      default:
        // run-started, cache and error events: the CLI prints the error itself, once.
        break;
    }
    this.schedule();
  };

  /** Stop redrawing. On a TTY a redraw still pending is drawn, so the screen shows the last state. */
  close(): void {
    if (this.finished) return;
    this.cancelPending?.();
    this.cancelPending = undefined;
    if (this.options.tty && this.drawnLines > 0) this.draw();
    this.drawnLines = 0;
    this.finished = true;
  }

  private finish(status: string, steps: number, durationMs: number): void {
    this.cancelPending?.();
    this.cancelPending = undefined;
    if (this.options.tty) {
      this.draw();
      this.drawnLines = 0; // the final frame stays; what follows is written below it
    } else {
      const last = this.statusLine();
      if (last) this.line(last);
    }
    this.finished = true;
    if (!this.options.tty) this.line(`run ${status} after ${count(steps)} steps in ${duration(durationMs)}`);
  }

  private observeStep(step: number, at: number): void {
    const last = this.steps.at(-1);
    if (last && step <= last.step) return;
    this.steps.push({ step, at });
    while (
      this.steps.length > RATE_SAMPLES ||
      (this.steps.length > 2 && at - this.steps[0]!.at > RATE_WINDOW_MS)
    )
      this.steps.shift();
  }

  /** Updates per second over the recent window, from the events' own timestamps. */
  private stepsPerSec(): number | undefined {
    const first = this.steps[0];
    const last = this.steps.at(-1);
    if (!first || !last || last.at <= first.at) return undefined;
    return ((last.step - first.step) * 1000) / (last.at - first.at);
  }

  private schedule(): void {
    if (!this.options.tty) {
      if (this.now() - this.lastStatus < this.options.intervalMs) return;
      const status = this.statusLine();
      if (status) {
        this.lastStatus = this.now();
        this.line(status);
      }
      return;
    }
    if (this.cancelPending) return;
    const wait = (this.options.redrawMs ?? 100) - (this.now() - this.lastDraw);
    if (wait <= 0) this.draw();
    else
      this.cancelPending = this.setTimer(() => {
        this.cancelPending = undefined;
        if (!this.finished) this.draw();
      }, wait);
  }

  /** Off a TTY: one plain line, stamped with the run's elapsed time. */
  private line(text: string): void {
    this.write(`[${duration(this.elapsedMs).padStart(6)}] ${text}\n`);
  }

  /** A line that stays: above the frame on a TTY, a plain line otherwise. */
  private message(text: string, code: number): void {
    if (!this.options.tty) {
      this.line(text);
      return;
    }
    this.clear();
    this.write(`${this.paint(this.fit(text), code)}\n`);
    this.draw();
  }

  private clear(): void {
    // Cursor to the start of the frame's first line, then erase to the end of the screen.
    if (this.drawnLines > 0) this.write(`${ESC}${this.drawnLines}F${ESC}J`);
    this.drawnLines = 0;
  }

  private draw(): void {
    this.lastDraw = this.now();
    const lines = this.frame();
    this.clear();
    if (lines.length) this.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  /** The TTY frame: the stages that are done on one line, then one line per active stage. */
  private frame(): string[] {
    const views = this.inPipelineOrder();
    const lines: string[] = [];
    const done = views.filter((v) => v.done && v.type !== 'sgd' && v.type !== 'evaluate');
    if (done.length) {
      const text = done.map((v) => `${v.id} ${duration(v.durationMs ?? 0)}`).join(' · ');
      lines.push(`${this.paint('✓', SGR.green)} ${this.fit(text, 2)}`);
    }
    // The updater and evaluator stay listed once done: their last numbers are the run's result.
    for (const v of views) {
      if (v.done && v.type !== 'sgd' && v.type !== 'evaluate') continue;
      const mark = v.done ? this.paint('✓', SGR.green) : this.paint('▸', SGR.cyan);
      const name = v.id.padEnd(10);
      lines.push(`${mark} ${this.fit(`${name} ${this.describe(v)}`, 2)}`);
    }
    return lines;
  }

  /** Cut plain text to the terminal width, less `used` columns; one column spare for auto-wrap. */
  private fit(text: string, used = 0): string {
    const columns = this.options.columns?.();
    if (!columns || columns <= used + 2) return text;
    const room = columns - used - 1;
    const chars = [...text];
    return chars.length <= room ? text : `${chars.slice(0, room - 1).join('')}…`;
  }

  private paint(text: string, code: number): string {
    return this.options.color ? `${ESC}${code}m${text}${ESC}0m` : text;
  }

  /** What a stage is doing, from its counters (and train/eval events for the updater/evaluator). */
  private describe(v: StageView): string {
    const c = v.counters;
    const edge = c['edge'] as { depth: number; capacity: number } | undefined;
    const queue = edge && edge.depth > 0 ? `  [queue ${edge.depth}/${edge.capacity}]` : '';
    const num = (key: string) => (typeof c[key] === 'number' ? (c[key] as number) : undefined);
    if (Object.keys(c).length === 0 && v.type !== 'shuffle' && v.type !== 'evaluate')
      return v.type === 'fetch' ? 'opening' : 'waiting for input';
    switch (v.type) {
      case 'fetch': {
        if (num('bytes') === undefined) return 'opening';
        const bytes = num('bytes')!;
        const total = num('total');
        const parts = [total ? `${formatBytes(bytes)} / ${formatBytes(total)}` : formatBytes(bytes)];
        if (total) parts.push(`${Math.floor((100 * bytes) / total)}%`);
        if (num('rate') !== undefined) parts.push(`${formatBytes(num('rate')!)}/s`);
        if (c['file']) parts.push(String(c['file']));
        return parts.join('  ') + queue;
      }
      case 'untar':
        return `${count(num('kept') ?? 0)} of ${count(num('entries') ?? 0)} entries, ${formatBytes(num('bytes') ?? 0)}${c['entry'] ? `  ${c['entry']}` : ''}${queue}`;
      case 'decodeIdx': {
        const splits = Object.keys(c)
          .filter((k) => k.endsWith('Examples') && typeof c[k] === 'number')
          .map((k) => `${k.slice(0, -'Examples'.length)} ${count(c[k] as number)}`);
        return `${count(num('records') ?? 0)} records decoded${splits.length ? ` (complete: ${splits.join(', ')})` : ''}${queue}`;
      }
      case 'shuffle':
        if (num('population') !== undefined)
          return `${c['mode']} over ${count(num('population')!)} examples${num('heldOut') ? `, ${count(num('heldOut')!)} held out` : ''}${queue}`;
        if (num('window') !== undefined)
          return `buffer ${count(num('window')!)}, ${count(num('emitted') ?? 0)} sampled${queue}`;
        return `collecting${queue}`;
      case 'sgd':
        return this.describeTraining(v) + queue;
      case 'evaluate':
        return this.describeEvals() ?? 'waiting for the first snapshot';
      default:
        return (
          Object.entries(c)
            .filter(([k]) => k !== 'edge')
            .map(([k, value]) => `${k}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
            .join(' ') + queue
        );
    }
  }

  private describeTraining(v: StageView): string {
    const c = v.counters;
    const step = Math.max(typeof c['step'] === 'number' ? c['step'] : 0, this.train?.step ?? 0);
    const total = typeof c['totalSteps'] === 'number' ? c['totalSteps'] : undefined;
    const parts = [`step ${count(step)}${total ? `/${count(total)}` : ''}`];
    const epoch = this.train && this.train.step >= step ? this.train.epoch : c['epoch'];
    if (typeof epoch === 'number') parts.push(`epoch ${epoch.toFixed(2)}`);
    // The train event's loss is the mean since the last one; the sampled counter is one batch's.
    const loss = this.train?.loss ?? (typeof c['loss'] === 'number' ? c['loss'] : undefined);
    if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
    if (this.train) parts.push(`${count(this.train.samplesPerSec)} samples/s`);
    const rate = this.stepsPerSec();
    if (total && !v.done && rate && rate > 0) parts.push(`ETA ${duration(((total - step) / rate) * 1000)}`);
    return parts.join('  ');
  }

  private describeEvals(): string | undefined {
    if (this.lastEval.size === 0) return undefined;
    return [...this.lastEval.entries()]
      .map(
        ([split, e]) =>
          `${split} accuracy ${e.accuracy.toFixed(4)} loss ${e.loss.toFixed(4)} @ step ${count(e.step)}`,
      )
      .join('; ');
  }

  /**
   * Stages in the config's order, by the index their `stage-started` carries. (Without one, as in
   * older logs: subscribing travels upstream, so stages start last-first, and reversed that order
   * is the config's — except for stages replayed from the data-stage cache.)
   */
  private inPipelineOrder(): StageView[] {
    const views = [...this.stages.values()];
    if (views.every((v) => v.index !== undefined)) return views.sort((a, b) => a.index! - b.index!);
    return views.reverse();
  }

  /** Off a TTY: training and the last evaluation once training runs, else every busy stage. */
  private statusLine(): string | undefined {
    const views = this.inPipelineOrder();
    const sgd = views.find((v) => v.type === 'sgd' && (v.counters['step'] !== undefined || this.train));
    if (sgd) {
      const evals = this.describeEvals();
      return `${sgd.id}: ${this.describeTraining(sgd)}${evals ? ` | ${evals}` : ''}`;
    }
    const busy = views.filter((v) => !v.done && Object.keys(v.counters).length > 0);
    if (!busy.length) return undefined;
    return busy.map((v) => `${v.id}: ${this.describe(v)}`).join(' | ');
  }
}
