/**
 * Progress on the terminal, drawn only from the event stream (never computed separately), so what
 * is shown and what is logged agree: feeding the same events.ndjson back in redraws the same run.
 *
 * It names no stage type: each stage's definition says how its counters read (`describeProgress`),
 * and a stage that does not say, or whose type it was not given, shows its counters as they are.
 *
 * On a TTY: one line per active stage, redrawn in place at most every `redrawMs`, plus one line
 * listing the stages that are done. Lines are cut to the terminal's width, because a line that
 * wraps would make the cursor-up count wrong and smear every later frame down the screen.
 *
 * Off a TTY (a pipe, a log file): plain lines with no escape codes at all — a status line at most
 * every `intervalMs`, and one line per evaluation, finished stage, checkpoint and warning, each
 * prefixed with the run's elapsed time.
 */
import type { EdgeReport, RxtrainEvent } from '../pipeline/events.js';
import type { ProgressView, RunProgress, StageDefinition } from '../pipeline/stage.js';
import { count, duration } from '../util/format.js';
import { StepRate } from './eta.js';
import { type FrameOptions, SGR, TerminalFrame } from './terminalFrame.js';

export interface RendererOptions extends FrameOptions {
  /**
   * The run's stage definitions (the built-ins and the run's user stages). A stage's line is what
   * its own `describeProgress` makes of its counters, found by the `stageType` of its
   * `stage-started`; a stage of a type not among them is drawn from its counters as they are.
   */
  stages: readonly StageDefinition[];
}

interface StageView {
  id: string;
  /** Absent for a stage type the renderer was not given (a user stage not loaded). */
  definition: StageDefinition | undefined;
  /** Position in the pipeline (absent in logs from before it was recorded). */
  index?: number;
  /** What the stage reported with `ctx.progress`, merged over its progress events. */
  counters: Record<string, unknown>;
  /** The edge after the stage, as last sampled. */
  edge?: EdgeReport;
  done: boolean;
  durationMs?: number;
}

export class ProgressRenderer {
  private readonly definitions: ReadonlyMap<string, StageDefinition>;
  private readonly stages = new Map<string, StageView>();
  /** The latest `train` and `eval` events, for the stages whose line reads them. */
  private readonly run: {
    train?: RunProgress['train'];
    evals: Map<string, { step: number; accuracy: number; loss: number }>;
  } = { evals: new Map() };
  private readonly rate = new StepRate();
  private elapsedMs = 0;
  private readonly out: TerminalFrame;

  constructor(write: (text: string) => void, options: RendererOptions) {
    // Later definitions win, as in a config: a user module may replace a built-in type.
    this.definitions = new Map(options.stages.map((d) => [d.type, d]));
    this.out = new TerminalFrame(write, options, {
      frame: () => this.frame(),
      status: () => this.statusLine(),
      elapsedMs: () => this.elapsedMs,
    });
  }

  onEvent = (event: RxtrainEvent): void => {
    if (this.out.ended) return;
    this.elapsedMs = event.elapsedMs;
    switch (event.type) {
      case 'stage-started':
        this.stages.set(event.stage, {
          id: event.stage,
          definition: this.definitions.get(event.stageType),
          index: event.index,
          counters: {},
          done: false,
        });
        break;
      case 'stage-progress': {
        const view = this.stages.get(event.stage);
        if (!view) break;
        const { type: _t, stage: _s, time: _time, elapsedMs: _e, seq: _q, edge, ...counters } = event;
        Object.assign(view.counters, counters);
        if (edge) view.edge = edge;
        const steps = this.describe(view).steps;
        if (steps) this.rate.observe(steps.done, event.elapsedMs);
        break;
      }
      case 'stage-finished': {
        const view = this.stages.get(event.stage);
        if (view) {
          view.done = true;
          view.durationMs = event.durationMs;
        }
        // A stage stopped by the ones after it (the endless sampler) did not finish anything.
        if (!this.out.options.tty && !event.stopped)
          this.out.line(
            `${event.stage} finished in ${duration(event.durationMs)} (${count(event.items)} items)`,
          );
        break;
      }
      case 'train':
        this.run.train = {
          step: event.step,
          epoch: event.epoch,
          loss: event.loss,
          samplesPerSec: event.samplesPerSec,
        };
        this.rate.observe(event.step, event.elapsedMs);
        break;
      case 'eval':
        this.run.evals.set(event.split, { step: event.step, accuracy: event.accuracy, loss: event.loss });
        if (!this.out.options.tty) {
          this.out.line(
            `eval ${event.split} at step ${count(event.step)}: accuracy ${event.accuracy.toFixed(4)}, loss ${event.loss.toFixed(4)}`,
          );
        }
        break;
      case 'checkpoint':
        this.out.message(`checkpoint at step ${count(event.step)} (${event.reason})`, SGR.dim);
        return;
      case 'warning':
        this.out.message(`warning: ${event.message}`, SGR.yellow);
        return;
      case 'run-finished':
        this.finish(event.status, event.steps, event.durationMs);
        return;
      default:
        // run-started, cache and error events: the CLI prints the error itself, once.
        break;
    }
    this.out.update();
  };

  /** Stop redrawing. On a TTY a redraw still pending is drawn, so the screen shows the last state. */
  close(): void {
    if (this.out.ended) return;
    if (this.out.options.tty && this.out.drawn) this.out.draw();
    this.out.release();
    this.out.end();
  }

  private finish(status: string, steps: number, durationMs: number): void {
    if (this.out.options.tty) {
      this.out.draw();
      this.out.release(); // the final frame stays; what follows is written below it
    } else this.out.statusLine();
    this.out.end();
    if (!this.out.options.tty)
      this.out.line(`run ${status} after ${count(steps)} steps in ${duration(durationMs)}`);
  }

  /** The TTY frame: the stages that are done on one line, then one line per active stage. */
  private frame(): string[] {
    const views = this.inPipelineOrder().map((v) => ({ v, view: this.describe(v) }));
    const lines: string[] = [];
    // A stage whose numbers are the run's result (the trainer, an evaluator) keeps its line.
    const folded = ({ v, view }: (typeof views)[number]) => v.done && !view.keep;
    const done = views.filter(folded);
    if (done.length) {
      const text = done.map(({ v }) => `${v.id} ${duration(v.durationMs ?? 0)}`).join(' · ');
      lines.push(`${this.out.paint('✓', SGR.green)} ${this.out.fit(text, 2)}`);
    }
    for (const { v, view } of views) {
      if (folded({ v, view })) continue;
      const mark = v.done ? this.out.paint('✓', SGR.green) : this.out.paint('▸', SGR.cyan);
      const name = v.id.padEnd(10);
      lines.push(`${mark} ${this.out.fit(`${name} ${this.lineText(v, view)}`, 2)}`);
    }
    return lines;
  }

  /** The stage's own view of its progress; its counters as they are when it gives none. */
  private describe(v: StageView): ProgressView {
    try {
      const view = v.definition?.describeProgress?.(v.counters, this.run);
      if (view) return view;
    } catch {
      // Counters of another shape (a log from another version of the stage): shown as they are,
      // because a progress line is never worth stopping a run or a replay for.
    }
    return { text: listCounters(v.counters) };
  }

  /** The line after a stage's name: its text, then the ETA and the queue, which are the run's. */
  private lineText(v: StageView, view: ProgressView): string {
    if (!reported(v)) return view.idle ?? 'waiting for input';
    const edge = v.edge;
    const queue = edge && edge.depth > 0 ? `  [queue ${edge.depth}/${edge.capacity}]` : '';
    return view.text + this.eta(v, view) + queue;
  }

  private eta(v: StageView, view: ProgressView): string {
    const rate = this.rate.perSecond();
    if (!view.steps?.total || v.done || !rate || rate <= 0) return '';
    return `  ETA ${duration(((view.steps.total - view.steps.done) / rate) * 1000)}`;
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
    const views = this.inPipelineOrder().map((v) => ({ v, view: this.describe(v) }));
    const trainer = views.find(({ view }) => view.steps);
    if (trainer) {
      const summaries = new Set(views.flatMap(({ view }) => (view.summary ? [view.summary] : [])));
      const { v, view } = trainer;
      return [`${v.id}: ${view.text}${this.eta(v, view)}`, ...summaries].join(' | ');
    }
    const busy = views.filter(({ v }) => !v.done && reported(v));
    if (!busy.length) return undefined;
    return busy.map(({ v, view }) => `${v.id}: ${this.lineText(v, view)}`).join(' | ');
  }
}

/** Has the stage sent a progress event yet (counters, or only its edge)? */
function reported(v: StageView): boolean {
  return Object.keys(v.counters).length > 0 || v.edge !== undefined;
}

/** A stage that does not describe its progress: its counters as they are. */
function listCounters(counters: Readonly<Record<string, unknown>>): string {
  return Object.entries(counters)
    .map(([k, value]) => `${k}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' ');
}
