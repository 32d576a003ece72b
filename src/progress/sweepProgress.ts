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
import { monotonicMs } from '../util/clock.js';
import { count, duration } from '../util/format.js';
import { type FrameOptions, SGR, TerminalFrame } from './terminalFrame.js';

export interface SweepProgressOptions extends FrameOptions {
  /** Stage definitions for the trials' progress (built-ins and the base's user stages). */
  stages: readonly StageDefinition[];
}

interface RunningTrial {
  params: string;
  startedAt: number;
  stageTypes: Map<string, string>;
  counters: Map<string, Record<string, unknown>>;
  run: { train?: RunProgress['train']; evals: Map<string, { step: number; accuracy: number; loss: number }> };
  metric?: number;
}

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
  private readonly out: TerminalFrame;
  private readonly now: () => number;

  constructor(write: (text: string) => void, options: SweepProgressOptions) {
    this.definitions = new Map(options.stages.map((d) => [d.type, d]));
    this.now = options.now ?? monotonicMs;
    this.out = new TerminalFrame(write, options, {
      frame: () => this.frame(),
      status: () => this.statusLine(),
      // Lines between sweep events are stamped from the last one's time.
      elapsedMs: () => this.elapsedMs + Math.max(0, this.now() - this.elapsedAt),
    });
  }

  onSweepEvent = (e: SweepEvent): void => {
    if (this.out.ended) return;
    this.elapsedMs = e.elapsedMs;
    this.elapsedAt = this.now();
    const s = this.sweep;
    switch (e.type) {
      case 'sweep-started':
        this.sweep = e;
        this.before = (e.counts.done ?? 0) + (e.counts.failed ?? 0) + (e.counts['stopped-early'] ?? 0);
        this.out.message(
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
        if (!this.out.options.tty)
          this.out.message(
            `trial ${e.trial} ${e.action === 'run' ? 'started' : e.promotedFrom !== undefined ? `promoted from rung ${e.promotedFrom}` : 'resumed'}: ${this.running.get(e.trial)!.params}`,
          );
        break;
      case 'trial-rung':
        if (!this.out.options.tty || e.decision === 'stop')
          this.out.message(
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
        this.out.message(`warning: ${e.message}`, SGR.yellow);
        return;
      case 'sweep-finished':
        this.close();
        return;
    }
    this.out.update();
  };

  onTrialEvent = (trial: string, e: RxtrainEvent): void => {
    const t = this.running.get(trial);
    if (!t || this.out.ended) return;
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
    this.out.update();
  };

  close(): void {
    if (this.out.ended) return;
    if (this.out.options.tty) this.out.clear();
    else this.out.statusLine();
    this.out.end();
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
    if (this.out.options.tty) this.out.message(`${mark} ${e.trial} ${what}${params}`, code);
    else this.out.message(`trial ${e.trial} ${what}`);
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

  /** On a TTY: a line per running trial, then the sweep's line. */
  private frame(): string[] {
    const lines = [...this.running].map(
      ([id, t]) => `${this.out.paint('▸', SGR.cyan)} ${this.out.fit(this.trialText(id, t), 2)}`,
    );
    const status = this.statusLine();
    if (status) lines.push(this.out.fit(status));
    return lines;
  }
}
