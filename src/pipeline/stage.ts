/**
 * The contract every stage follows, built-in or written by a user: a `type` name, a schema for its
 * own settings (strict: unknown keys are errors), and a factory that returns a Flow operator.
 * Wiring (id, order, edge capacity, checkpoint policy) belongs to the pipeline, not to stages.
 */

import type { FlowOperator } from '../flow/index.js';
import type { Prng } from '../util/random.js';
import type { Clock, EventBus } from './events.js';
import type { Message } from './messages.js';

/** One problem a settings schema found, in the shape zod (v3 or v4) reports it. */
export interface SchemaIssue {
  path: readonly PropertyKey[];
  message: string;
  code?: string;
  /** For unknown-key issues: the offending keys. */
  keys?: readonly string[];
}

/** Anything with zod's `safeParse`: a zod schema, or a hand-written validator. */
export interface SettingsSchema<S> {
  safeParse(
    value: unknown,
  ): { success: true; data: S } | { success: false; error: { issues: readonly SchemaIssue[] } };
}

/** When downstream stages need a copy of the model. */
export interface SnapshotRequest {
  /** A snapshot before the first update. */
  atStart?: boolean;
  /** A snapshot every this many steps (0 or absent: never). */
  every?: number;
}

/** The union of every stage's snapshot requests, given to stages that produce models. */
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

/** When the pipeline takes checkpoints. */
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

/**
 * Early stopping, shared by the stages of one pipeline. A stage that may stop training on what it
 * sees in model snapshots (an evaluator) calls `judge()` when it is created and `verdict(step)` on
 * every snapshot the producer sent for evaluation. The model producer waits for `verdicts(step)` after each snapshot it
 * sends for evaluation, then stops if `stopRequest` is set: the stopping step never depends on
 * timing, so runs stay reproducible.
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
   * verdicts may come before or after this call (a judge can see the snapshot as soon as it is
   * pushed), so an entry lives until the producer has collected it.
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

export interface StageContext {
  readonly id: string;
  readonly type: string;
  /** Directory of the config file; relative paths in settings resolve against it. */
  readonly baseDir: string;
  /** Where downloads and stage caches live. */
  readonly cacheDir: string;
  readonly clock: Clock;
  readonly events: EventBus;
  /** A generator for this stage, seeded with `seed` when given, else from the run seed and the id. */
  rng(seed?: number): Prng;
  /** Record the stage's latest counters; the pipeline samples them into progress events. */
  progress(counters: Record<string, number | string | undefined>): void;
  /** When the stages downstream want model snapshots. */
  readonly snapshots: SnapshotPlan;
  readonly checkpoints: CheckpointPolicy;
  /** This stage's state from the checkpoint being resumed, or undefined on a fresh run. */
  readonly restored: unknown;
  /** Aborted when the run is asked to stop (SIGINT/SIGTERM): take a checkpoint and end. */
  readonly stopSignal: AbortSignal;
  /** How long CPU-bound work may run before yielding to the event loop, in ms. */
  readonly sliceMs: number;
  /**
   * Early stopping: evaluators judge snapshots, the model producer stops when asked. Optional so
   * that a context built by hand (a test) needs none: without it nothing judges or stops early.
   */
  readonly training?: TrainingControl;
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds stages of every settings type
export interface StageDefinition<S = any> {
  readonly type: string;
  /** One line for `rxtrain stages` and the docs. */
  readonly summary: string;
  readonly settings: SettingsSchema<S>;
  /** Stateful stages can snapshot and restore; a stage without it cannot be resumed mid-run. */
  readonly stateful?: boolean;
  /**
   * The output is a function of the input and the settings alone (no clock, randomness or outside
   * state), so a cached copy may stand in for it. Decoders and feature transforms are pure.
   */
  readonly pure?: boolean;
  /**
   * For a source stage: a digest identifying the bytes it will emit, or undefined when it cannot
   * tell without reading them. With pure stages after it, a rerun whose digest and settings match
   * replays their output from the data-stage cache instead of running them.
   */
  fingerprint?(settings: S, ctx: StageContext): Promise<string | undefined>;
  /** Snapshots this stage needs from the model producer upstream. */
  snapshots?(settings: S): SnapshotRequest | undefined;
  /**
   * How the stage's progress line reads, from the counters it reported with `ctx.progress` (merged
   * over its progress events, so the first may not have them all) and what the run's `train` and
   * `eval` events said. The renderer knows no stage type: without this, or when it returns
   * undefined, it lists the counters as they are. A stage types the counters with its own
   * interface; they come back from events (perhaps an older log), so it reads them with care.
   */
  describeProgress?(counters: Readonly<Record<string, unknown>>, run: RunProgress): ProgressView | undefined;
  /** Build the stage's operator. Does no work: the flow starts when it is subscribed. */
  create(settings: S, ctx: StageContext): FlowOperator<Message, Message>;
}

/** Identity, for type inference: `export const myStage = defineStage({ … })`. */
export function defineStage<S>(definition: StageDefinition<S>): StageDefinition<S> {
  return definition;
}

/** A stage's progress line as the stage itself describes it; the renderer adds the rest. */
export interface ProgressView {
  /** The line after the stage's name. The renderer appends the ETA and the stage's queue. */
  text: string;
  /** What the line reads before the stage has reported anything (default "waiting for input"). */
  idle?: string;
  /**
   * Set by the stage that trains: updates done and planned. Its rate drives the ETA, and off a
   * terminal the status line follows this stage alone once it has them.
   */
  steps?: { done: number; total?: number };
  /**
   * The line stays once the stage is done, its last numbers being the run's result, instead of
   * joining the list of finished stages.
   */
  keep?: boolean;
  /** A short summary (an evaluator's latest scores) for the trainer's status line off a terminal. */
  summary?: string;
}

/** What the run's `train` and `eval` events have said so far, for the stages whose line reads them. */
export interface RunProgress {
  /** The latest `train` event. */
  readonly train?: { step: number; epoch: number; loss: number; samplesPerSec: number };
  /** The latest `eval` event of each split, in the order the splits were first evaluated. */
  readonly evals: ReadonlyMap<string, { step: number; accuracy: number; loss: number }>;
}
