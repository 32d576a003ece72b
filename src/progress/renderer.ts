/**
 * Progress on the terminal, drawn only from the event stream (never computed separately), so what
 * is shown and what is logged agree. On a TTY: one line per active stage, redrawn in place. Off a
 * TTY (a pipe, a log file): a plain line at a throttled interval and one per evaluation, with no
 * escape codes.
 */
import type { RxtrainEvent } from '../pipeline/events.js';

export interface RendererOptions {
  /** Redraw in place with ANSI escapes. */
  tty: boolean;
  /** Colour (only on a TTY, and never when NO_COLOR is set). */
  color: boolean;
  /** Off a TTY: minimum ms between progress lines. */
  intervalMs: number;
  /** On a TTY: minimum ms between redraws. */
  redrawMs?: number;
  now?: () => number;
}

interface StageView {
  id: string;
  type: string;
  counters: Record<string, unknown>;
  done: boolean;
  durationMs?: number;
}

export class ProgressRenderer {
  private readonly stages = new Map<string, StageView>();
  private lastEval = new Map<string, { step: number; accuracy: number; loss: number }>();
  private train: { step: number; epoch: number; loss: number; samplesPerSec: number; at: number } | undefined;
  private rate: { step: number; at: number } | undefined;
  private stepsPerMs = 0;
  private drawnLines = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastLine = Number.NEGATIVE_INFINITY;
  private pending: ReturnType<typeof setTimeout> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: RendererOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  onEvent = (event: RxtrainEvent): void => {
    switch (event.type) {
      case 'stage-started':
        this.stages.set(event.stage, { id: event.stage, type: event.stageType, counters: {}, done: false });
        break;
      case 'stage-progress': {
        const view = this.stages.get(event.stage);
        if (view) Object.assign(view.counters, event);
        break;
      }
      case 'stage-finished': {
        const view = this.stages.get(event.stage);
        if (view) {
          view.done = true;
          view.durationMs = event.durationMs;
        }
        if (!this.options.tty && !event.stopped)
          this.line(`${event.stage} finished in ${seconds(event.durationMs)} (${event.items} items)`);
        break;
      }
      case 'train': {
        const at = this.now();
        if (this.rate && event.step > this.rate.step)
          this.stepsPerMs = (event.step - this.rate.step) / (at - this.rate.at || 1);
        this.rate = { step: event.step, at };
        this.train = {
          step: event.step,
          epoch: event.epoch,
          loss: event.loss,
          samplesPerSec: event.samplesPerSec,
          at,
        };
        break;
      }
      case 'eval':
        this.lastEval.set(event.split, { step: event.step, accuracy: event.accuracy, loss: event.loss });
        if (!this.options.tty) {
          this.line(
            `eval ${event.split} step ${event.step}: accuracy ${event.accuracy.toFixed(4)}, loss ${event.loss.toFixed(4)}`,
          );
        }
        break;
      case 'warning':
        this.message(`warning: ${event.message}`);
        return;
      case 'checkpoint':
        if (!this.options.tty) this.line(`checkpoint at step ${event.step} (${event.reason})`);
        break;
      case 'run-finished':
        this.draw(true);
        return;
      default:
        break;
    }
    this.schedule();
  };

  /** Stop redrawing; leaves the last frame on screen. */
  close(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
  }

  private schedule(): void {
    const now = this.now();
    if (this.options.tty) {
      const wait = (this.options.redrawMs ?? 100) - (now - this.lastDraw);
      if (wait <= 0) this.draw(false);
      else if (!this.pending) {
        this.pending = setTimeout(() => {
          this.pending = undefined;
          this.draw(false);
        }, wait);
        this.pending.unref?.();
      }
    } else if (now - this.lastLine >= this.options.intervalMs) {
      const status = this.statusLine();
      if (status) this.line(status);
    }
  }

  private line(text: string): void {
    this.lastLine = this.now();
    this.write(`${text}\n`);
  }

  private message(text: string): void {
    if (this.options.tty) {
      this.clear();
      this.write(`${this.paint(text, 33)}\n`);
      this.drawnLines = 0;
      this.draw(false);
    } else this.line(text);
  }

  private clear(): void {
    if (this.drawnLines > 0) this.write(`\x1b[${this.drawnLines}F\x1b[J`);
    this.drawnLines = 0;
  }

  private draw(final: boolean): void {
    if (!this.options.tty) {
      if (final) {
        const status = this.statusLine();
        if (status) this.line(status);
      }
      return;
    }
    this.lastDraw = this.now();
    const lines = [...this.stages.values()].map((v) => this.stageLine(v));
    this.clear();
    if (lines.length) this.write(lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
    this.drawnLines = final ? 0 : lines.length;
  }

  private paint(text: string, code: number): string {
    return this.options.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  private stageLine(v: StageView): string {
    const mark = v.done ? this.paint('✓', 32) : this.paint('▸', 36);
    const name = v.id.padEnd(10);
    const detail =
      v.done && v.type !== 'sgd' && v.type !== 'evaluate'
        ? `done in ${seconds(v.durationMs ?? 0)}`
        : this.describe(v);
    return `${mark} ${name} ${detail}`;
  }

  /** What a stage is doing, from its counters (and train/eval events for the trainer/evaluator). */
  private describe(v: StageView): string {
    const c = v.counters;
    const edge = c['edge'] as { depth: number; capacity: number } | undefined;
    const buf = edge && edge.depth > 0 ? `  [queue ${edge.depth}/${edge.capacity}]` : '';
    switch (v.type) {
      case 'fetch': {
        const bytes = Number(c['bytes'] ?? 0);
        const total = c['total'] === undefined ? undefined : Number(c['total']);
        const rate = c['rate'] === undefined ? '' : `  ${formatBytes(Number(c['rate']))}/s`;
        return `${formatBytes(bytes)}${total ? ` / ${formatBytes(total)}` : ''}${rate}${c['file'] ? `  ${c['file']}` : ''}${buf}`;
      }
      case 'untar':
        return `${c['kept'] ?? 0} of ${c['entries'] ?? 0} entries, ${formatBytes(Number(c['bytes'] ?? 0))}${c['entry'] ? `  ${c['entry']}` : ''}${buf}`;
      case 'decodeIdx':
        return `${formatCount(Number(c['records'] ?? 0))} examples${buf}`;
      case 'shuffle':
        return c['population'] !== undefined
          ? `${c['mode']} over ${formatCount(Number(c['population']))} examples${Number(c['heldOut']) ? `, ${formatCount(Number(c['heldOut']))} held out` : ''}${buf}`
          : `collecting${buf}`;
      case 'sgd': {
        const step = Number(c['step'] ?? this.train?.step ?? 0);
        const total = c['totalSteps'] === undefined ? undefined : Number(c['totalSteps']);
        const parts = [
          `step ${formatCount(step)}${total && Number.isFinite(total) ? `/${formatCount(total)}` : ''}`,
        ];
        if (c['epoch'] !== undefined) parts.push(`epoch ${Number(c['epoch']).toFixed(2)}`);
        if (this.train)
          parts.push(
            `loss ${this.train.loss.toFixed(4)}`,
            `${formatCount(this.train.samplesPerSec)} samples/s`,
          );
        if (total && Number.isFinite(total) && this.stepsPerMs > 0 && !v.done) {
          parts.push(`ETA ${seconds((total - step) / this.stepsPerMs)}`);
        }
        return parts.join('  ') + buf;
      }
      case 'evaluate': {
        const evals = [...this.lastEval.entries()].map(
          ([split, e]) =>
            `${split} accuracy ${e.accuracy.toFixed(4)} loss ${e.loss.toFixed(4)} @ step ${e.step}`,
        );
        return evals.length ? evals.join('; ') : 'waiting for the first snapshot';
      }
      default:
        return (
          Object.entries(c)
            .filter(([k]) => !['type', 'stage', 'time', 'seq', 'elapsedMs', 'edge'].includes(k))
            .map(([k, value]) => `${k}=${String(value)}`)
            .join(' ') + buf
        );
    }
  }

  /** Off a TTY: the one most informative line right now. */
  private statusLine(): string | undefined {
    const active = [...this.stages.values()].filter((v) => !v.done);
    const sgd = active.find((v) => v.type === 'sgd' && (v.counters['step'] !== undefined || this.train));
    const current = sgd ?? active.find((v) => Object.keys(v.counters).length > 0);
    if (!current) return undefined;
    return `${current.id}: ${this.describe(current)}`;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function seconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}
