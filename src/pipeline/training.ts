/**
 * The pipeline's side of training: what a model producer (the sgd stage) asks after every update.
 *
 * A producer only trains. After each update it calls `afterStep`, and the gate decides, from the
 * pipeline's settings, whether a model snapshot goes downstream now (an evaluator asked for this
 * step), whether a checkpoint is due (checkpoints.ts), whether an evaluator's early stopping must
 * be heard first, and whether it is time to yield to the event loop. It pushes those messages
 * itself and tells the producer to go on, to wait for a promise, or that the run has ended.
 */
import type { Emitter } from '../flow/index.js';
import type { Checkpoints, ReadPoint } from './checkpoints.js';
import type { Clock } from './events.js';
import type { CheckpointBarrier, Message, ModelSnapshot, TrainingEnd } from './messages.js';

/** When downstream stages need a copy of the model. */
export interface SnapshotRequest {
  /** A snapshot before the first update. */
  atStart?: boolean;
  /** A snapshot every this many steps (0 or absent: never). */
  every?: number;
}

/** The union of every stage's snapshot requests. */
export class SnapshotPlan {
  readonly atStart: boolean;
  readonly every: readonly number[];
  constructor(requests: readonly SnapshotRequest[]) {
    this.atStart = requests.some((r) => r.atStart);
    this.every = [...new Set(requests.map((r) => r.every ?? 0).filter((n) => n > 0))].sort((a, b) => a - b);
  }
  /** Is a snapshot wanted after update number `step` (1-based)? */
  wants(step: number): boolean {
    if (step === 0) return this.atStart;
    for (const n of this.every) if (step % n === 0) return true;
    return false;
  }
}

/**
 * Early stopping, shared by the stages of one pipeline. A stage that may stop training on what it
 * sees in model snapshots (an evaluator) calls `judge()` when it is created and `verdict(step)` on
 * every snapshot sent for evaluation. The gate waits for `verdicts(step)` after each such snapshot,
 * then stops if `stopRequest` is set: the stopping step never depends on timing.
 */
export class TrainingControl {
  private judges = 0;
  private readonly pending = new Map<
    number,
    { left: number; resolve: () => void; promise: Promise<void>; collected: boolean }
  >();
  stopRequest: { step: number; reason: string } | undefined;

  judge(): void {
    this.judges++;
  }

  /**
   * Resolves once every judge has seen the snapshot of `step`; undefined when nobody judges. The
   * verdicts may come before or after this call, so an entry lives until it has been collected.
   */
  verdicts(step: number): Promise<void> | undefined {
    if (this.judges === 0) return undefined;
    const e = this.entry(step);
    if (e.left <= 0) this.pending.delete(step);
    else e.collected = true;
    return e.promise;
  }

  verdict(step: number, stop?: string): void {
    if (stop && !this.stopRequest) this.stopRequest = { step, reason: stop };
    const e = this.entry(step);
    if (--e.left <= 0) {
      e.resolve();
      if (e.collected) this.pending.delete(step);
    }
  }

  private entry(step: number) {
    let e = this.pending.get(step);
    if (!e) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      e = { left: this.judges, resolve, promise, collected: false };
      this.pending.set(step, e);
    }
    return e;
  }
}

/** What the gate needs from the producer: the model, copied, and where it stands in its input. */
export interface ModelProducer {
  model(evaluate: boolean, final: boolean): ModelSnapshot;
  readPoint(): ReadPoint | undefined;
}

/** After an update: go on, wait for this promise (then ask `ended`), or the run has ended. */
export type StepVerdict = 'go' | 'ended' | Promise<void>;

export interface TrainingGateOptions {
  /** The producer's stage id: the barrier's origin. */
  origin: string;
  plan: SnapshotPlan;
  control: TrainingControl;
  checkpoints: Checkpoints;
  clock: Clock;
  /** Max ms of CPU-bound work between yields to the event loop. */
  sliceMs: number;
  /** Told when training begins (the producer's first input). */
  onBegin?: () => void;
}

export class TrainingGate {
  private sliceStarted = 0;
  private done = false;

  constructor(private readonly o: TrainingGateOptions) {}

  /** The run has ended (a signal's checkpoint, the end): the producer handles nothing more. */
  get ended(): boolean {
    return this.done;
  }

  /** For evaluators: early stopping. */
  get control(): TrainingControl {
    return this.o.control;
  }

  /** An evaluator asked to stop: the reason, once the producer has reached that step. */
  get stopRequested(): string | undefined {
    return this.o.control.stopRequest?.reason;
  }

  /** Training starts: the step-0 snapshot (not on a resume), clocks for slices and checkpoints. */
  begin(producer: ModelProducer, out: Emitter<Message>, resumed: boolean): void {
    this.sliceStarted = this.o.clock.now();
    this.o.checkpoints.startClock();
    this.o.onBegin?.();
    if (!resumed && this.o.plan.atStart) out.push(producer.model(true, false));
  }

  /** After update number `step`: snapshots, checkpoints and early stopping, then maybe a yield. */
  afterStep(step: number, producer: ModelProducer, out: Emitter<Message>): StepVerdict {
    const { checkpoints, plan, control, clock } = this.o;
    const reason = checkpoints.due(step);
    if (reason === 'signal') {
      this.done = true;
      const barrier = checkpoints.barrier(
        'signal',
        producer.model(false, false),
        this.o.origin,
        producer.readPoint(),
      );
      out.push(barrier);
      out.end();
      return barrier.written;
    }
    const wanted = plan.wants(step);
    if (reason || wanted) {
      // Stages see a model snapshot only when an evaluator asked for one, never because a
      // checkpoint was due: what they do cannot depend on when checkpoints are taken. A
      // checkpoint's barrier carries its own copy otherwise.
      const snap = producer.model(wanted, false);
      if (wanted) out.push(snap);
      let barrier: CheckpointBarrier | undefined;
      if (reason) {
        barrier = checkpoints.barrier(reason, snap, this.o.origin, producer.readPoint());
        out.push(barrier);
      }
      // With early stopping on, wait for the verdict on this step, so where training stops
      // depends on the data alone, never on how far ahead of the evaluator the producer ran.
      const verdict = wanted ? control.verdicts(step) : undefined;
      if (barrier || verdict) {
        return Promise.all([barrier?.written, verdict]).then(() => {
          // everySeconds counts from when the previous checkpoint was durable.
          if (barrier) checkpoints.startClock();
        });
      }
    }
    if (clock.now() - this.sliceStarted >= this.o.sliceMs) {
      // Let timers, I/O and signal handlers run: a long synchronous loop would starve them.
      return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.sliceStarted = clock.now();
      });
    }
    return 'go';
  }

  /**
   * The last model, and why training ended (with an evaluator's reason when it stopped early):
   * evaluated, then checkpointed by the run's sink under the `atEnd` policy.
   */
  finish(producer: ModelProducer, out: Emitter<Message>, endedBy: TrainingEnd, stopReason?: string): void {
    if (this.done) return;
    this.done = true;
    this.o.checkpoints.recordReadPoint(producer.readPoint());
    out.push({ ...producer.model(true, true), endedBy, ...(stopReason ? { stopReason } : {}) });
    out.end();
  }
}
