/**
 * Structured progress events. Every stage reports through an `EventBus`; the run writes each event
 * as one JSON line to `events.ndjson`, and the terminal renderer draws from the same events, so
 * what is shown and what is logged never disagree.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { monotonicMs } from '../util/clock.js';

export interface EdgeReport {
  /** Items buffered between this stage and the next. */
  depth: number;
  capacity: number;
  maxDepth: number;
  bytes: number;
  /** The edge's byte capacity and the most bytes it has held, when it has a byte capacity. */
  capacityBytes?: number;
  maxBytes?: number;
  /** Items the stage has put into the edge and the next stage has taken out, in total. */
  emitted?: number;
  consumed?: number;
}

/**
 * The version of the event format, written in every run-started event. Within a version changes
 * are additive (a new event type, a new optional field); docs/events.md is the contract.
 */
export const EVENTS_VERSION = 1;

export type RxtrainEventInput =
  | {
      type: 'run-started';
      run: string;
      config: string;
      runDir: string;
      version: string;
      /** The version of the event format (eventSchema.ts: EVENTS_VERSION). */
      eventsVersion?: number;
      resumedFrom?: number;
    }
  | {
      type: 'stage-started';
      stage: string;
      stageType: string;
      /** Position of the stage in the pipeline, from 0. */
      index: number;
    }
  | {
      type: 'stage-progress';
      stage: string;
      edge?: EdgeReport;
      /** Stage-specific counters: bytes, total, rate, records, step, loss… */
      [counter: string]: unknown;
    }
  | {
      type: 'stage-finished';
      stage: string;
      durationMs: number;
      items: number;
      /** The stage was stopped by the stages after it (e.g. an endless sampler once training ended). */
      stopped?: boolean;
      /** The stage did not run: the data-stage cache replayed its output (durationMs is the replay's). */
      cached?: boolean;
    }
  | {
      type: 'train';
      step: number;
      epoch: number;
      samples: number;
      /** Mean training loss of the batches since the previous train event. */
      loss: number;
      /** Fraction of those training samples classified correctly before their update. */
      accuracy: number;
      lr: number;
      samplesPerSec: number;
    }
  | {
      type: 'eval';
      split: string;
      step: number;
      epoch: number;
      examples: number;
      accuracy: number;
      loss: number;
      confusion?: number[];
      classes?: number;
      /** A name per class, when the data has them. */
      classNames?: string[];
      precision?: number[];
      recall?: number[];
      f1?: number[];
      misclassified?: { index: number; label: number; predicted: number }[];
      /** The best evaluation so far by the evaluator's chosen metric (this one included). */
      best?: { metric: string; step: number; value: number };
      /** Set when this evaluation made early stopping end training. */
      earlyStop?: string;
    }
  | { type: 'checkpoint'; step: number; reason: string; file: string }
  | {
      type: 'cache';
      /** The last of the cached data stages. */
      stage: string;
      /** hit: replayed from the cache; miss: none usable, computing; write: stored; bypass: not cacheable. */
      action: 'hit' | 'miss' | 'write' | 'bypass';
      key: string;
      path: string;
      /** Every stage the cache stands in for. */
      stages?: string[];
      bytes?: number;
      reason?: string;
    }
  | {
      type: 'resumed';
      /** The step training continues from (0 when no checkpoint was usable: a fresh start). */
      step: number;
      /** The checkpoint resumed from, if any. */
      checkpoint: string | null;
      /** Bytes of events.ndjson after the checkpoint that were cut (they belonged to lost work). */
      eventsCut: number;
      /** Newer checkpoints that failed to verify and were set aside. */
      invalid: string[];
    }
  | { type: 'warning'; stage?: string; code: string; message: string }
  | { type: 'error'; stage?: string; code: string; message: string; [detail: string]: unknown }
  | {
      type: 'run-finished';
      status: 'completed' | 'failed' | 'interrupted';
      steps: number;
      durationMs: number;
      exitCode: number;
    };

export type RxtrainEvent = RxtrainEventInput & {
  /** Wall-clock time, ISO 8601. */
  time: string;
  /** Milliseconds since the run started. */
  elapsedMs: number;
  /** Position in this run's event history. */
  seq: number;
};

export type EventType = RxtrainEvent['type'];

/** Monotonic and wall clocks, injectable so tests can fix them. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Wall-clock date. */
  date(): Date;
}

export const systemClock: Clock = {
  now: monotonicMs,
  date: () => new Date(),
};

export type EventListener = (event: RxtrainEvent) => void;

/**
 * Fans each event out to its listeners synchronously, in order. It holds nothing: a listener that
 * needs to buffer (a renderer) bounds its own state.
 */
export class EventBus {
  private readonly listeners: EventListener[] = [];
  private readonly started: number;
  seq: number;

  constructor(
    private readonly clock: Clock = systemClock,
    startSeq = 0,
  ) {
    this.started = clock.now();
    this.seq = startSeq;
  }

  on(listener: EventListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(input: RxtrainEventInput): RxtrainEvent {
    const event = {
      ...input,
      time: this.clock.date().toISOString(),
      elapsedMs: Math.round(this.clock.now() - this.started),
      seq: this.seq++,
    } as RxtrainEvent;
    for (const listener of this.listeners) listener(event);
    return event;
  }
}

/**
 * Appends events to an NDJSON file with synchronous writes: a line is on disk (in the page cache)
 * before the next event is produced, so a killed run leaves a log that ends at a line boundary
 * (at worst with one torn line, which readers skip), and `offset` is always a line boundary.
 */
export class NdjsonLog {
  private readonly fd: number;
  offset: number;

  constructor(path: string, startOffset = 0) {
    this.fd = openSync(path, 'a');
    this.offset = startOffset;
  }

  write(event: RxtrainEvent): void {
    const line = Buffer.from(JSON.stringify(event) + '\n');
    writeSync(this.fd, line);
    this.offset += line.byteLength;
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Parse an events.ndjson file's text, skipping a torn last line. */
export function parseEvents(text: string): RxtrainEvent[] {
  const events: RxtrainEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const value = JSON.parse(line) as unknown;
      // Only objects with a type are events (a `null` or `42` line is not, whoever wrote it).
      if (value && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string')
        events.push(value as RxtrainEvent);
    } catch {
      // A run killed mid-write leaves at most one incomplete line.
    }
  }
  return events;
}
