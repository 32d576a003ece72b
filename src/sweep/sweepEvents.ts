/**
 * Sweep-level events, one JSON line each in the sweep directory's `events.ndjson` (each trial's own
 * events stay in its run directory). A resumed sweep appends to the same log, its `seq` numbers
 * going on from the last line, so the file is the sweep's whole history.
 */
import { closeSync, existsSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import type { Clock } from '../pipeline/events.js';
import type { Point } from './searchSpace.js';
import type { TrialStatus } from './sweepState.js';

export type SweepEventInput =
  | {
      type: 'sweep-started';
      name: string;
      sweepDir: string;
      method: 'grid' | 'random';
      scheduler: 'asha' | null;
      metric: string;
      mode: 'max' | 'min';
      parallel: number;
      /** Trials in the plan, and how many of them each status holds now. */
      planned: number;
      counts: Partial<Record<TrialStatus, number>>;
      /** Trials added to a recorded sweep by --extend. */
      added: number;
      resumed: boolean;
      varying: string[];
    }
  | {
      type: 'trial-started';
      trial: string;
      params: Point;
      /** `run` for a first attempt, `resume` to continue from the trial's checkpoint. */
      action: 'run' | 'resume';
      /** Its status before: planned, interrupted, or stopped-early (a promotion). */
      was: TrialStatus;
      attempt: number;
      /** ASHA: the rung it was promoted from. */
      promotedFrom?: number;
      pid: number;
    }
  | {
      type: 'trial-rung';
      trial: string;
      rung: number;
      resource: number;
      step: number;
      value: number;
      /** Its place among the rung's results so far (1 = best), and how many there are. */
      rank: number;
      of: number;
      decision: 'continue' | 'stop';
    }
  | {
      type: 'trial-finished';
      trial: string;
      status: TrialStatus;
      exitCode: number | null;
      metric?: number;
      steps?: number;
      /** SGD steps this attempt trained. */
      stepsSpent: number;
      durationMs: number;
      error?: string;
      /** ASHA: the rung it was stopped at. */
      rung?: number;
    }
  | { type: 'warning'; code: string; message: string; trial?: string }
  | {
      type: 'sweep-finished';
      status: 'completed' | 'failed' | 'interrupted';
      counts: Partial<Record<TrialStatus, number>>;
      best?: { trial: string; value: number; params: Point };
      /** SGD steps spent by every trial of the sweep, all sessions. */
      stepsSpent: number;
      durationMs: number;
      exitCode: number;
    };

export type SweepEvent = SweepEventInput & { time: string; elapsedMs: number; seq: number };
export type SweepEventListener = (event: SweepEvent) => void;

/** Stamps events, appends them to the log and hands them to the listeners, in order. */
export class SweepEventLog {
  private readonly fd: number;
  private seq: number;
  private readonly started: number;
  private readonly listeners: SweepEventListener[] = [];

  constructor(
    path: string,
    private readonly clock: Clock,
  ) {
    // seq goes on from the last complete line of an earlier session; a line torn by a kill is cut,
    // or the next event would be appended to it.
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (text && !text.endsWith('\n'))
      truncateSync(path, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
    this.seq = lastSeq(text) + 1;
    this.fd = openSync(path, 'a');
    this.started = clock.now();
  }

  on(listener: SweepEventListener): void {
    this.listeners.push(listener);
  }

  emit(input: SweepEventInput): SweepEvent {
    const event = {
      ...input,
      time: this.clock.date().toISOString(),
      elapsedMs: Math.round(this.clock.now() - this.started),
      seq: this.seq++,
    } as SweepEvent;
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
    for (const listener of this.listeners) listener(event);
    return event;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function lastSeq(text: string): number {
  const lines = text.split('\n').filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const seq = (JSON.parse(lines[i]!) as { seq?: unknown }).seq;
      if (typeof seq === 'number') return seq;
    } catch {
      // A sweep killed mid-write leaves at most one torn line.
    }
  }
  return -1;
}

export function parseSweepEvents(text: string): SweepEvent[] {
  const events: SweepEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      events.push(JSON.parse(line) as SweepEvent);
    } catch {
      // a torn last line
    }
  }
  return events;
}
