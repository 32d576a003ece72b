/**
 * A sweep's progress on the terminal, drawn from events only: the sweep's own (sweep/events.ndjson)
 * and each running trial's (its events.ndjson, as the sweep follows it).
 *
 * On a TTY: one line per running trial — its id, the parameters that vary, its step out of its
 * total, training loss and latest metric — then the sweep's line: trials finished of the total,
 * failures, the best so far and an ETA, redrawn in place at most every `redrawMs`. Each trial that
 * ends leaves one line above the block.
 *
 * Off a TTY: plain lines with no escape codes — one per trial that starts or ends, one per ASHA
 * decision, and the sweep's line at most every `intervalMs`, each stamped with the sweep's time.
 *
 * A trial's steps come from its stages' own `describeProgress` (the one that trains says so), so
 * nothing here names a stage type.
 */
import type { RxtrainEvent } from '../pipeline/events.js';
import type { RunProgress, StageDefinition } from '../pipeline/stage.js';
import { describePoint } from '../sweep/searchSpace.js';
import type { SweepEvent } from '../sweep/sweepEvents.js';
import { count, duration } from '../util/format.js';

export interface SweepProgressOptions {
  /** Stage definitions for the trials' progress (built-ins and the base's user stages). */
  stages: readonly StageDefinition[];
  tty: boolean;
  color: boolean;
  /** Off a TTY: minimum ms between status lines. */
  intervalMs: number;
  /** On a TTY: minimum ms between redraws (default 100). */
  redrawMs?: number;
  columns?: () => number | undefined;
  /** Monotonic ms: throttling, and the ETA between events. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => () => void;
}

interface RunningTrial {
  params: string;
  startedAt: number;
  stageTypes: Map<string, string>;
  counters: Map<string, Record<string, unknown>>;
  run: { train?: RunProgress['train']; evals: Map<string, { step: number; accuracy: number; loss: number }> };
  metric?: number;
}

const ESC = '\x1b[';
const SGR = { green: 32, red: 31, cyan: 36, yellow: 33, dim: 2 } as const;

export class SweepProgress {
  private readonly definitions: ReadonlyMap<string, StageDefinition>;
  private readonly running = new Map<string, RunningTrial>();
  private readonly durations: number[] = [];
  private sweep?: Extract<SweepEvent, { type: 'sweep-started' }>;
  /** The last status of each trial that has ended an attempt (a stopped trial may go on later). */
  private readonly ended = new Map<string, string>();
  private before = 0;
  private best?: { trial: string; value: number };
  private elapsedMs = 0;
  /** `now()` when the last sweep event came: lines between events are stamped from it. */
  private elapsedAt = 0;
  private drawnLines = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastStatus = Number.NEGATIVE_INFINITY;
  private cancelPending: (() => void) | undefined;
  private closed = false;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: SweepProgressOptions,
  ) {
    this.definitions = new Map(options.stages.map((d) => [d.type, d]));
    this.now = options.now ?? (() => performance.now());
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        timer.unref?.();
        return () => clearTimeout(timer);
      });
  }

  onSweepEvent = (e: SweepEvent): void => {
    if (this.closed) return;
    this.elapsedMs = e.elapsedMs;
    this.elapsedAt = this.now();
    const s = this.sweep;
    switch (e.type) {
      case 'sweep-started':
        this.sweep = e;
        this.before = (e.counts.done ?? 0) + (e.counts.failed ?? 0) + (e.counts['stopped-early'] ?? 0);
        this.message(
          `sweep ${e.name}: ${e.planned} trials${e.resumed ? `, ${this.before} finished before` : ''}${e.added ? `, ${e.added} added` : ''}; ${e.method}${e.scheduler ? ' with ASHA' : ''}, ${e.parallel} at once; ranked by ${e.metric} (${e.mode})`,
        );
        return;
      case 'trial-started':
        // A trial stopped early before this session, now promoted: no longer counted as finished.
        if (e.was === 'stopped-early' && !this.ended.has(e.trial)) this.before--;
        this.running.set(e.trial, {
          params: describePoint(e.params, s?.varying ?? Object.keys(e.params)),
          startedAt: this.now(),
          stageTypes: new Map(),
          counters: new Map(),
          run: { evals: new Map() },
        });
        if (!this.options.tty)
          this.message(
            `trial ${e.trial} ${e.action === 'run' ? 'started' : e.promotedFrom !== undefined ? `promoted from rung ${e.promotedFrom}` : 'resumed'}: ${this.running.get(e.trial)!.params}`,
          );
        break;
      case 'trial-rung':
        if (!this.options.tty || e.decision === 'stop')
          this.message(
            `trial ${e.trial} at rung ${e.rung} (step ${count(e.step)}): ${s?.metric ?? 'metric'} ${e.value.toFixed(4)}, ${e.rank} of ${e.of} → ${e.decision === 'continue' ? 'goes on' : 'stopped'}`,
            e.decision === 'stop' ? SGR.yellow : SGR.dim,
          );
        return;
      case 'trial-finished': {
        const trial = this.running.get(e.trial);
        this.running.delete(e.trial);
        this.ended.set(e.trial, e.status);
        if (e.status === 'done') {
          this.durations.push(e.durationMs);
          if (e.metric !== undefined && Number.isFinite(e.metric) && this.better(e.metric, this.best?.value))
            this.best = { trial: e.trial, value: e.metric };
        }
        this.trialLine(e, trial);
        return;
      }
      case 'warning':
        this.message(`warning: ${e.message}`, SGR.yellow);
        return;
      case 'sweep-finished':
        this.close();
        return;
    }
    this.schedule();
  };

  onTrialEvent = (trial: string, e: RxtrainEvent): void => {
    const t = this.running.get(trial);
    if (!t || this.closed) return;
    if (e.type === 'stage-started') t.stageTypes.set(e.stage, e.stageType);
    else if (e.type === 'stage-progress') {
      const { type: _t, stage, time: _time, elapsedMs: _e, seq: _q, edge: _edge, ...counters } = e;
      t.counters.set(stage, { ...t.counters.get(stage), ...counters });
    } else if (e.type === 'train') t.run.train = e;
    else if (e.type === 'eval') {
      t.run.evals.set(e.split, e);
      const [split, name] = (this.sweep?.metric ?? '').split('.');
      if (e.split === split) t.metric = name === 'loss' ? e.loss : e.accuracy;
    } else return;
    this.schedule();
  };

  close(): void {
    if (this.closed) return;
    this.cancelPending?.();
    this.cancelPending = undefined;
    if (this.options.tty) this.clear();
    else {
      const status = this.statusLine();
      if (status) this.line(status);
    }
    this.closed = true;
  }

  /** Trials with a final status: those before this session, and those that ended one in it. */
  private finals(): number {
    let n = this.before;
    for (const [id, status] of this.ended)
      if (!this.running.has(id) && ['done', 'failed', 'stopped-early'].includes(status)) n++;
    return n;
  }

  private better(v: number, than: number | undefined): boolean {
    if (than === undefined) return true;
    return this.sweep?.mode === 'min' ? v < than : v > than;
  }

  private trialLine(
    e: Extract<SweepEvent, { type: 'trial-finished' }>,
    trial: RunningTrial | undefined,
  ): void {
    const params = trial ? `  ${trial.params}` : '';
    const metric = e.metric !== undefined ? `  ${this.sweep?.metric ?? 'metric'} ${e.metric.toFixed(4)}` : '';
    const steps = e.steps !== undefined ? `  ${count(e.steps)} steps` : '';
    const what =
      e.status === 'failed'
        ? `failed: ${e.error ?? `exit ${e.exitCode}`}`
        : e.status === 'stopped-early'
          ? `stopped at rung ${e.rung}${metric}${steps}`
          : `${e.status}${metric}${steps}  ${duration(e.durationMs)}`;
    const mark = e.status === 'done' ? '✓' : e.status === 'failed' ? '✗' : '■';
    const code = e.status === 'done' ? SGR.green : e.status === 'failed' ? SGR.red : SGR.yellow;
    if (this.options.tty) this.message(`${mark} ${e.trial} ${what}${params}`, code);
    else this.message(`trial ${e.trial} ${what}`);
  }

  /** The sweep's line: finished of total, failures, running, the best so far, the ETA. */
  private statusLine(): string | undefined {
    const s = this.sweep;
    if (!s) return undefined;
    const parts = [`${this.finals()}/${s.planned} finished`];
    const failed = (s.counts.failed ?? 0) + [...this.ended.values()].filter((v) => v === 'failed').length;
    if (failed) parts.push(`${failed} failed`);
    if (this.running.size) parts.push(`${this.running.size} running`);
    if (this.best) parts.push(`best ${s.metric} ${this.best.value.toFixed(4)} (${this.best.trial})`);
    const eta = this.eta();
    if (eta !== undefined) parts.push(`ETA ${duration(eta)}`);
    return `sweep ${s.name}: ${parts.join(' · ')}`;
  }

  /**
   * Trials left times the mean duration of a finished one, over the slots; ASHA's trials end
   * early or late by design, so it has none.
   */
  private eta(): number | undefined {
    const s = this.sweep;
    if (!s || s.scheduler || this.durations.length === 0) return undefined;
    const mean = this.durations.reduce((a, b) => a + b, 0) / this.durations.length;
    const waiting = Math.max(0, s.planned - this.finals() - this.running.size);
    if (waiting + this.running.size === 0) return undefined;
    let left = waiting * mean;
    for (const t of this.running.values()) left += Math.max(0, mean - (this.now() - t.startedAt));
    return left / Math.max(1, Math.min(s.parallel, waiting + this.running.size));
  }

  private trialText(id: string, t: RunningTrial): string {
    const parts = [id, t.params];
    for (const [stage, counters] of t.counters) {
      const definition = this.definitions.get(t.stageTypes.get(stage) ?? '');
      let steps: { done: number; total?: number } | undefined;
      try {
        steps = definition?.describeProgress?.(counters, t.run)?.steps;
      } catch {
        steps = undefined;
      }
      if (steps) parts.push(`step ${count(steps.done)}${steps.total ? `/${count(steps.total)}` : ''}`);
    }
    if (t.run.train) parts.push(`loss ${t.run.train.loss.toFixed(4)}`);
    if (t.metric !== undefined) parts.push(`${this.sweep?.metric} ${t.metric.toFixed(4)}`);
    return parts.join('  ');
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
        if (!this.closed) this.draw();
      }, wait);
  }

  private line(text: string): void {
    const elapsed = this.elapsedMs + Math.max(0, this.now() - this.elapsedAt);
    this.write(`[${duration(elapsed).padStart(6)}] ${text}\n`);
  }

  /** A line that stays: above the block on a TTY, a plain stamped line otherwise. */
  private message(text: string, code?: number): void {
    if (!this.options.tty) {
      this.line(text);
      return;
    }
    this.clear();
    this.write(`${code === undefined ? this.fit(text) : this.paint(this.fit(text), code)}\n`);
    this.draw();
  }

  private clear(): void {
    if (this.drawnLines > 0) this.write(`${ESC}${this.drawnLines}F${ESC}J`);
    this.drawnLines = 0;
  }

  private draw(): void {
    this.lastDraw = this.now();
    const lines = [...this.running].map(
      ([id, t]) => `${this.paint('▸', SGR.cyan)} ${this.fit(this.trialText(id, t), 2)}`,
    );
    const status = this.statusLine();
    if (status) lines.push(this.fit(status));
    this.clear();
    if (lines.length) this.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }

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
}
