/**
 * How a checkpoint is taken and written — all of the pipeline's checkpoint policy, in one place.
 *
 *   1. When: after each update the model producer asks the training gate (training.ts), which asks
 *      `due(step)` here: a stop signal, every N steps, every T seconds. At the end the run's sink
 *      asks `atEnd()` for the final checkpoint.
 *   2. What: a barrier message right behind the model snapshot it checkpoints. It starts with the
 *      state of the producer and of every stateful stage before it — a producer that runs ahead
 *      (a sampler) at the producer's read point — and collects the state of each stateful stage
 *      after it as it arrives there (`arrive`, called by the pipeline before the stage sees it).
 *      Stages only answer `snapshot()` / `stateAt()` / `restore()` (stage.ts).
 *   3. Writing: the run's sink hands each barrier to a `CheckpointWriter`: the event first, the
 *      log made durable, then the file (checkpointFile.ts: one file, complete or absent), then
 *      older files rotated out, keeping the newest `keep` and the best by `keepBest`.
 */
import { join } from 'node:path';
import type { AtomicWriteOptions } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import {
  type Checkpoint,
  type CheckpointMeta,
  checkpointFileName,
  type RunDependencies,
  writeCheckpoint,
} from './checkpointFile.js';
import type { Clock, EventBus, NdjsonLog } from './events.js';
import type { CheckpointBarrier, EvalResult, ModelSnapshot } from './messages.js';
import type { StageDefinition, StageState } from './stage.js';

/** When the pipeline takes checkpoints (the config's `checkpoint` section). */
export interface CheckpointPolicy {
  /** Every this many steps; 0 turns step-based checkpoints off. */
  every: number;
  /** Every this many seconds; 0 turns time-based checkpoints off. */
  everySeconds: number;
  /** How many of the latest checkpoints to keep. */
  keep: number;
  /** Also keep the checkpoint with the best value of this evaluation metric, e.g. `val.accuracy`. */
  keepBest: string | null;
  /** Checkpoint and stop on SIGINT/SIGTERM. */
  onSignal: boolean;
  /** Checkpoint the finished model. */
  atEnd: boolean;
}

/** Where a producer stands in a stamped input: the item's stamped position, and how much of it it used. */
export interface ReadPoint {
  /** The stage that stamped the item (a sampler). */
  stage: string;
  position: unknown;
  used: number;
}

/**
 * The stateful stages of one pipeline, in order: their definitions' state schemas, the handlers
 * each registered for its running flow, and the states a resumed run starts from.
 */
export class StageStates {
  private readonly handlers = new Map<string, StageState<unknown>>();
  private readonly order: readonly { id: string; definition: StageDefinition }[];
  private readonly restored: Record<string, unknown> | undefined;

  /** Throws E_RESUME unless `restored` has a valid state for exactly the stateful stages. */
  constructor(
    stages: readonly { id: string; definition: StageDefinition }[],
    restored?: Record<string, unknown>,
  ) {
    this.order = stages;
    this.restored = restored && checkStates(stages, restored);
  }

  /** `ctx.state` of stage `id`: remember the handlers; on a resume, restore at once. */
  register(id: string, handlers: StageState<unknown>): void {
    this.handlers.set(id, handlers);
    const state = this.restored?.[id];
    if (state !== undefined) handlers.restore(state);
  }

  /** States of the stages from the first through `origin`, the origin's read point applied. */
  upTo(origin: string, readPoint: ReadPoint | undefined): Record<string, unknown> {
    const states: Record<string, unknown> = {};
    for (const { id } of this.order) {
      const state = this.take(id, readPoint);
      if (state !== undefined) states[id] = state;
      if (id === origin) break;
    }
    return states;
  }

  /** The state of one stage, if it keeps one. */
  take(id: string, readPoint: ReadPoint | undefined): unknown {
    const h = this.handlers.get(id);
    if (!h) return undefined;
    if (h.stateAt) return readPoint?.stage === id ? h.stateAt(readPoint.position, readPoint.used) : undefined;
    return h.snapshot?.();
  }

  /** The stages, in pipeline order. */
  ids(): readonly { id: string }[] {
    return this.order;
  }

  /** Is stage `id` after `origin` in the pipeline? */
  after(id: string, origin: string): boolean {
    const i = this.order.findIndex((s) => s.id === id);
    const o = this.order.findIndex((s) => s.id === origin);
    return i > o && o >= 0;
  }
}

/** Check restored states against the stages' schemas; returns them parsed. */
function checkStates(
  stages: readonly { id: string; definition: StageDefinition }[],
  restored: Record<string, unknown>,
): Record<string, unknown> {
  const byId = new Map(stages.map((s) => [s.id, s]));
  for (const id of Object.keys(restored)) {
    if (!byId.get(id)?.definition.state)
      throw new RxtrainError(
        'E_RESUME',
        `the checkpoint holds state for stage "${id}", which the config does not have${byId.has(id) ? ' as a stateful stage' : ''}`,
      );
  }
  const parsed: Record<string, unknown> = {};
  for (const s of stages) {
    const schema = s.definition.state;
    if (!schema) continue;
    if (restored[s.id] === undefined) {
      throw new RxtrainError(
        'E_RESUME',
        `stage "${s.id}" (${s.definition.type}) is stateful but the checkpoint holds no state for it; it cannot resume`,
      );
    }
    const result = schema.safeParse(restored[s.id]);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const path = issue.path.map(String).join('.');
      throw new RxtrainError(
        'E_RESUME',
        `stage "${s.id}" (${s.definition.type}): the checkpoint's state does not fit it${path ? ` at ${path}` : ''}: ${issue.message}`,
      );
    }
    parsed[s.id] = result.data;
  }
  return parsed;
}

/** The checkpoint policy of one run: when checkpoints are due, and the barriers that take them. */
export class Checkpoints {
  private lastAt = 0;
  private lastReadPoint: ReadPoint | undefined;

  constructor(
    readonly policy: CheckpointPolicy,
    private readonly clock: Clock,
    private readonly stopSignal: AbortSignal,
    readonly states: StageStates,
  ) {}

  /** Time-based checkpoints count from here: training's start, or the last durable checkpoint. */
  startClock(): void {
    this.lastAt = this.clock.now();
  }

  /** Is a checkpoint due after update `step`, and why? */
  due(step: number): CheckpointBarrier['reason'] | undefined {
    const p = this.policy;
    if (p.onSignal && this.stopSignal.aborted) return 'signal';
    if (p.every > 0 && step % p.every === 0) return 'interval';
    if (p.everySeconds > 0 && this.clock.now() - this.lastAt >= p.everySeconds * 1000) return 'time';
    return undefined;
  }

  /** A barrier behind `model`, holding the states of `origin` and the stages before it. */
  barrier(
    reason: CheckpointBarrier['reason'],
    model: ModelSnapshot,
    origin: string,
    readPoint: ReadPoint | undefined,
  ): CheckpointBarrier {
    this.recordReadPoint(readPoint);
    return createBarrier(reason, model, origin, this.states.upTo(origin, readPoint));
  }

  /** The producer's final read point, for the final checkpoint. */
  recordReadPoint(readPoint: ReadPoint | undefined): void {
    if (readPoint) this.lastReadPoint = readPoint;
  }

  /** A barrier reaches stage `id` (before the stage sees it): record its state if it keeps one. */
  arrive(id: string, barrier: CheckpointBarrier): void {
    if (id in barrier.states || !this.states.after(id, barrier.origin)) return;
    const state = this.states.take(id, undefined);
    if (state !== undefined) barrier.states[id] = state;
  }

  /** At the sink, the final model arrived: its checkpoint, unless the policy says none. */
  atEnd(model: ModelSnapshot): CheckpointBarrier | undefined {
    if (!this.policy.atEnd) return undefined;
    const states: Record<string, unknown> = {};
    for (const { id } of this.states.ids()) {
      const state = this.states.take(id, this.lastReadPoint);
      if (state !== undefined) states[id] = state;
    }
    return createBarrier(model.stopReason ? 'early-stop' : 'final', model, '', states);
  }
}

function createBarrier(
  reason: CheckpointBarrier['reason'],
  model: ModelSnapshot,
  origin: string,
  states: Record<string, unknown>,
): CheckpointBarrier {
  let settle!: (error?: unknown) => void;
  const written = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  // A barrier nobody waits on must not crash the process with an unhandled rejection.
  written.catch(() => {});
  return { kind: 'checkpoint', reason, model, origin, states, settle, written };
}

export interface CheckpointWriterOptions {
  runDir: string;
  policy: CheckpointPolicy;
  configHash: string;
  clock: Clock;
  events: EventBus;
  log: NdjsonLog;
  /** The best checkpoint so far (a resumed run's, from its checkpoint). */
  best: CheckpointMeta['best'];
  /** How files are written (tests substitute a failing file system). */
  write?: AtomicWriteOptions;
  /** What the run depends on, as known when each checkpoint is written. */
  depends: () => RunDependencies;
}

/** Writes the barriers that reach the run's sink, in order. */
export class CheckpointWriter {
  private best: CheckpointMeta['best'];
  readonly dir: string;

  /** The evaluator's best by the keepBest metric, from its `eval` events. */
  private evaluatorBest: { step: number; value: number } | undefined;

  constructor(private readonly o: CheckpointWriterOptions) {
    this.best = o.best;
    this.dir = join(o.runDir, 'checkpoints');
    o.events.on((e) => {
      if (e.type === 'eval' && e.best && e.best.metric === o.policy.keepBest) this.evaluatorBest = e.best;
    });
  }

  /** Write `barrier` and settle it; a failure settles it too and is thrown. */
  save(barrier: CheckpointBarrier): void {
    try {
      this.write(barrier);
      barrier.settle();
    } catch (error) {
      barrier.settle(error);
      throw error;
    }
  }

  private write({ model: snap, reason, states }: CheckpointBarrier): void {
    const { policy, events, log } = this.o;
    const name = checkpointFileName(snap.step);
    const metric = policy.keepBest;
    if (metric) {
      // The evaluator's own notion of best (its minDelta included) when it judges by this metric;
      // otherwise the plain comparison of this checkpoint's results.
      const judged = this.evaluatorBest;
      if (judged) {
        if (judged.step === snap.step) this.best = { metric, value: judged.value, file: name };
      } else {
        const value = metricOf(snap.results, metric);
        const lowerIsBetter = metric.endsWith('.loss');
        const best = this.best;
        if (
          value !== undefined &&
          Number.isFinite(value) &&
          (best === null || (lowerIsBetter ? value < best.value : value > best.value))
        ) {
          this.best = { metric, value, file: name };
        }
      }
    }
    // The event first, then the log made durable: a resume cuts the log at the recorded offset.
    events.emit({ type: 'checkpoint', step: snap.step, reason, file: join(this.dir, name) });
    log.sync();
    const checkpoint: Checkpoint = {
      meta: {
        format: 2,
        rxtrainVersion: VERSION,
        configHash: this.o.configHash,
        step: snap.step,
        epoch: snap.epoch,
        samples: snap.samples,
        reason,
        final: snap.final,
        time: this.o.clock.date().toISOString(),
        eventsOffset: log.offset,
        eventsSeq: events.seq,
        best: this.best,
        depends: this.o.depends(),
      },
      model: {
        weights: snap.weights,
        architecture: snap.architecture,
        classes: snap.classes,
        shape: snap.shape,
        ...(snap.classNames ? { classNames: snap.classNames } : {}),
        transform: snap.transform,
        results: snap.results,
      },
      states,
    };
    writeCheckpoint(this.dir, checkpoint, {
      ...this.o.write,
      keep: policy.keep,
      protect: new Set(this.best ? [this.best.file] : []),
    });
  }
}

function metricOf(results: readonly EvalResult[], metric: string): number | undefined {
  const [split, name] = metric.split('.') as [string, 'accuracy' | 'loss'];
  const r = results.find((x) => x.split === split);
  return r ? r[name] : undefined;
}
