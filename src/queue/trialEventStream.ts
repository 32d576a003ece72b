/**
 * Trial events from the workers to the sweep process, through one Redis stream per sweep: the sweep
 * draws its progress from them and ASHA reads its rungs from them, exactly as a local sweep reads a
 * trial's events.ndjson. Workers forward the events that matter there — evaluations, cache
 * lookups, checkpoints, resumes, the end — and training steps at most twice a second per trial (the
 * progress display's need; the full log travels in the run bundle). The stream is capped at
 * ~100,000 entries; a sweep process that restarts reads it from the start, and repeats change
 * nothing (ASHA ignores a rung it has, the display redraws).
 */
import type { Redis } from 'ioredis';
import { parseEvents, type RxtrainEvent } from '../pipeline/events.js';
import { keysOf } from './queueKeys.js';

const KEEP = 100_000;
const TRAIN_EVERY_MS = 500;

/** Forwards one trial's events to the sweep's stream; `now` is the worker's clock. */
export function trialEventForwarder(
  redis: Redis,
  queue: string,
  trial: string,
  now: () => number = Date.now,
): (event: RxtrainEvent) => void {
  const stream = keysOf(queue).events;
  let lastTrain = Number.NEGATIVE_INFINITY;
  return (event) => {
    if (event.type === 'train') {
      if (now() - lastTrain < TRAIN_EVERY_MS) return;
      lastTrain = now();
    }
    redis
      .xadd(stream, 'MAXLEN', '~', String(KEEP), '*', 'trial', trial, 'event', JSON.stringify(event))
      .catch(() => {}); // progress only: a lost one is redrawn by the next
  };
}

/**
 * Read the sweep's stream from the start until `signal` aborts, calling `onEvent` for each entry.
 * `redis` is a connection of its own (XREAD BLOCK holds it). Survives a Redis restart: the client
 * reconnects and the read goes on from the last id seen.
 */
export async function followTrialEvents(
  redis: Redis,
  queue: string,
  onEvent: (trial: string, event: RxtrainEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const stream = keysOf(queue).events;
  let last = '0';
  while (!signal.aborted) {
    let reply: [string, [string, string[]][]][] | null;
    try {
      reply = (await redis.xread('COUNT', 500, 'BLOCK', 500, 'STREAMS', stream, last)) as typeof reply;
    } catch {
      if (signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        last = id;
        const trial = fields[fields.indexOf('trial') + 1];
        const text = fields[fields.indexOf('event') + 1];
        if (!trial || !text) continue;
        for (const event of parseEvents(`${text}\n`)) onEvent(trial, event);
      }
    }
  }
}
