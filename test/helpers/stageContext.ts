/** Driving one stage directly in a test: a StageContext recording events and progress, and input chunks. */

import { Checkpoints, StageStates } from '../../src/pipeline/checkpoints.js';
import { EventBus, type RxtrainEvent } from '../../src/pipeline/events.js';
import type { FileChunk } from '../../src/pipeline/messages.js';
import type { StageContext } from '../../src/pipeline/stage.js';
import { SnapshotPlan, TrainingControl, TrainingGate } from '../../src/pipeline/training.js';
import { Prng } from '../../src/util/random.js';

export interface TestContext extends StageContext {
  /** Every event the stage emitted. */
  emitted: RxtrainEvent[];
  /** The latest progress counters. */
  counters: Record<string, unknown>;
}

export function stageContext(
  type: string,
  options: { cacheDir?: string; baseDir?: string; seed?: number } = {},
): TestContext {
  const events = new EventBus();
  const emitted: RxtrainEvent[] = [];
  events.on((e) => emitted.push(e));
  const counters: Record<string, unknown> = {};
  const clock = { now: () => performance.now(), date: () => new Date() };
  const stopSignal = new AbortController().signal;
  return {
    id: type,
    type,
    baseDir: options.baseDir ?? process.cwd(),
    cacheDir: options.cacheDir ?? '/nonexistent-cache',
    clock,
    events,
    rng: (seed) => new Prng(seed ?? options.seed ?? 1),
    progress: (c) => Object.assign(counters, c),
    state: () => {},
    training: new TrainingGate({
      origin: type,
      plan: new SnapshotPlan([]),
      control: new TrainingControl(),
      checkpoints: new Checkpoints(
        { every: 0, everySeconds: 0, keep: 1, keepBest: null, onSignal: false, atEnd: false },
        clock,
        stopSignal,
        new StageStates([]),
      ),
      clock,
      sliceMs: 25,
    }),
    stopSignal,
    sliceMs: 25,
    emitted,
    counters,
  };
}

/** A file as `bytes` messages of `size` bytes, then its empty `last` chunk; the source is `src/<file>`. */
export function fileChunks(file: string, data: Uint8Array, size = 64 * 1024): FileChunk[] {
  const source = `src/${file}`;
  const out: FileChunk[] = [];
  for (let o = 0; o < data.length; o += size) {
    out.push({ kind: 'bytes', file, source, offset: o, bytes: data.subarray(o, o + size), last: false });
  }
  out.push({ kind: 'bytes', file, source, offset: data.length, bytes: new Uint8Array(0), last: true });
  return out;
}
