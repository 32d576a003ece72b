/**
 * The contract every stage follows, built-in or written by a user: a `type` name, a schema for its
 * own settings (strict: unknown keys are errors), and a factory that returns a Flow operator.
 * Wiring (id, order, edge capacity, checkpoint policy) belongs to the pipeline, not to stages.
 */

import type { FlowOperator } from '../flow/index.js';
import type { Prng } from '../util/random.js';
import type { Clock, EventBus } from './events.js';
import type { Message } from './messages.js';
import type { SnapshotRequest, TrainingGate } from './training.js';

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

/**
 * A stateful stage's answer to the pipeline's checkpoints. The pipeline decides when a checkpoint
 * is taken (src/pipeline/checkpoints.ts); a stage only says what its state is and takes it back.
 * State is small plain data (typed arrays allowed: they are stored as binary sections).
 */
export interface StageState<St> {
  /**
   * The state now. Called when a checkpoint barrier reaches the stage: every message before the
   * barrier has been handled, none after it.
   */
  snapshot?(): St;
  /**
   * For a producer that runs ahead of its consumer (a sampler with blocks waiting on its edge):
   * its state at the consumer's read point, from the position stamped on the item being read and
   * how many of that item's samples were used. Such a stage gives this instead of `snapshot`.
   */
  stateAt?(position: unknown, used: number): St;
  /** Continue from a checkpoint's state, already checked against the stage's `state` schema. */
  restore(state: St): void;
}

export interface StageContext<St = unknown> {
  readonly id: string;
  readonly type: string;
  /** Directory of the config file; relative paths in settings resolve against it. */
  readonly baseDir: string;
  /** Where downloads and stage caches live. */
  readonly cacheDir: string;
  /** No network: remote sources are read from the download cache only (a report, an inspection). */
  readonly offline?: boolean;
  readonly clock: Clock;
  readonly events: EventBus;
  /** A generator for this stage, seeded with `seed` when given, else from the run seed and the id. */
  rng(seed?: number): Prng;
  /** Record the stage's latest counters; the pipeline samples them into progress events. */
  progress(counters: Record<string, number | string | undefined>): void;
  /**
   * Declare this subscription's state (a stage whose definition has a `state` schema must). Call it
   * once when the stage's flow starts, in `transform`'s factory: on a resumed run `restore` is
   * called at once with the checkpoint's state, before any input arrives.
   */
  state(handlers: StageState<St>): void;
  /** Aborted when the run is asked to stop (SIGHUP/SIGINT/SIGTERM): take a checkpoint and end. */
  readonly stopSignal: AbortSignal;
  /**
   * For a sampler: it may hand the table of examples it builds over to the stage after it
   * (`SampleBlock.reusable`). True when no stage before it reads a message's bytes once it has
   * handed the message on (`StageDefinition.keepsNoInput`) and the stage after it takes sample
   * blocks as a trainer does (`takesSampleTables`).
   */
  readonly samplesHandedOver?: boolean;
  /** How long CPU-bound work may run before yielding to the event loop, in ms. */
  readonly sliceMs: number;
  /**
   * For a model producer: what it asks after every update (snapshots, checkpoints, early
   * stopping, yielding; training.ts). For an evaluator: `training.control` to judge snapshots.
   */
  readonly training: TrainingGate;
}

/**
 * Something a stage needs from a stage before it, as a plain token. The built-in stages use
 * `split:<name>` (the examples of a split, e.g. `split:val`), `features` (examples carrying a
 * feature transform), `samples` (sample blocks) and `model` (model snapshots); a user stage may
 * add its own.
 */
export interface WiringNeed {
  readonly token: string;
  /** The settings key the need comes from (`['splits', 0]`), so an error points at its line. */
  readonly key?: readonly (string | number)[];
  /** What would provide it, said when nothing before the stage does (`add shuffle.holdout …`). */
  readonly hint?: string;
}

/** What a stage needs from the stages before it and provides, as tokens, to the stages after it. */
export interface StageWiring {
  readonly needs?: readonly WiringNeed[];
  readonly provides?: readonly string[];
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds stages of every settings type
export interface StageDefinition<S = any, St = any> {
  readonly type: string;
  /** One line for `rxtrain stages` and the docs. */
  readonly summary: string;
  readonly settings: SettingsSchema<S>;
  /**
   * The schema of a stateful stage's checkpointed state; its presence makes the stage stateful
   * (it must call `ctx.state()`). A restored state that does not match is an E_RESUME error.
   * A stage without state is started afresh on a resume.
   */
  readonly state?: SettingsSchema<St>;
  /**
   * The output is a function of the input and the settings alone (no clock, randomness or outside
   * state), so a cached copy may stand in for it. Decoders and feature transforms are pure.
   */
  readonly pure?: boolean;
  /**
   * For a source stage: a digest identifying the bytes it will emit, or undefined when it cannot
   * tell without reading them. With pure stages after it, a rerun whose digest and settings match
   * replays their output from the data-stage cache instead of running them. With
   * `{ onlyIfKnown: true }`: null instead of reading the source when its digest is not known yet
   * (the stage then learns it while it reads, and is asked again once its output has ended).
   */
  fingerprint?(
    settings: S,
    ctx: StageContext,
    options?: FingerprintOptions,
  ): Promise<string | undefined | null>;
  /**
   * Whether a cached copy of the data stages' output would save this stage's work (default: yes).
   * A pure stage answers for plain input: no when it hands on views of it with little work per
   * message (a pass-through, a decoder of uncompressed fixed-size records, a transform made from
   * its settings alone). A source stage answers for its bytes: no when they are local files
   * stored plain (no archive, no compression, no checksum to verify), which read as fast as a
   * cache file of them would. When every data stage answers no, the data-stage cache is bypassed:
   * its file would be a second copy of the source, written at every new setting and read no
   * faster.
   */
  worthCaching?(settings: S, ctx: StageContext): boolean | Promise<boolean>;
  /**
   * The stage reads no message's bytes once it has handed the message on (a source, a decoder, a
   * transform that works on messages as they stream by), so a sampler after it may hand its table
   * over (`StageContext.samplesHandedOver`). The built-in data stages say so; a stage that does
   * not say so is taken to keep what it sees.
   */
  readonly keepsNoInput?: boolean;
  /**
   * The stage takes sample blocks as a trainer does: it reads each block as it arrives and passes
   * none on, and may write over the rows of a table handed over to it (`SampleBlock.reusable`).
   */
  readonly takesSampleTables?: boolean;
  /** Snapshots this stage needs from the model producer upstream. */
  snapshots?(settings: S): SnapshotRequest | undefined;
  /**
   * What the stage needs from stages before it and provides to stages after it, given its
   * settings; validation reports every need that no earlier stage provides. A stage without it
   * declares nothing: it needs nothing and provides nothing (what it passes on stays available).
   */
  wiring?(settings: S): StageWiring;
  /**
   * How the stage's progress line reads, from the counters it reported with `ctx.progress` (merged
   * over its progress events, so the first may not have them all) and what the run's `train` and
   * `eval` events said. The renderer knows no stage type: without this, or when it returns
   * undefined, it lists the counters as they are. A stage types the counters with its own
   * interface; they come back from events (perhaps an older log), so it reads them with care.
   */
  describeProgress?(counters: Readonly<Record<string, unknown>>, run: RunProgress): ProgressView | undefined;
  /** Build the stage's operator. Does no work: the flow starts when it is subscribed. */
  create(settings: S, ctx: StageContext<St>): FlowOperator<Message, Message>;
}

/** Identity, for type inference: `export const myStage = defineStage({ … })`. */
export function defineStage<S, St = never>(definition: StageDefinition<S, St>): StageDefinition<S, St> {
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

/** How a source stage's fingerprint is asked for (`StageDefinition.fingerprint`). */
export interface FingerprintOptions {
  /** Answer null rather than read the source when its digest is not known yet. */
  onlyIfKnown?: boolean;
}
