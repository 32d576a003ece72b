/**
 * What travels along a pipeline. Every item is one of these, tagged by `kind`; a stage handles
 * the kinds it knows and passes every other kind through untouched, so a linear chain of stages
 * carries the test split past the trainer to the evaluator.
 */

import type { Architecture } from '../kernels/architecture.js';
import { type FeatureTransform, featureTransform } from '../kernels/features.js';

/** The kernels apply them, and own their definitions (they import nothing from the pipeline). */
export type { Architecture, FeatureTransform };

/** A piece of a named byte stream: a downloaded file, an archive entry. */
export interface FileChunk {
  kind: 'bytes';
  /** Logical name: the file's name, or the entry's path inside its archive. */
  file: string;
  /** Where the bytes come from, for messages: a path, a URL, or `archive!/entry`. */
  source: string;
  /** Byte offset of this chunk within the file. */
  offset: number;
  bytes: Uint8Array;
  /** The file's final chunk (it may be empty). */
  last: boolean;
  /** The file's full size, when known in advance. */
  size?: number;
}

/**
 * About the bytes of values in one batch of examples from a local file: fetch hands its blocks on
 * in chunks of this size, a decoder makes one batch of each, and the data-stage cache cuts its
 * replay to match. Large enough that a batch is cheap to pass through the stages (MNIST: ~55
 * batches), small enough for the edges' byte accounting.
 */
export const BATCH_BYTES = 1024 * 1024;

/**
 * The most bytes a local file's block holds (fetch reads it whole and hands it on in views), and so
 * the most values one record of the data-stage cache holds: what one of them keeps alive.
 */
export const BLOCK_BYTES = 64 * 1024 * 1024;

/** A batch of decoded examples of one split, in file order. */
export interface Examples {
  kind: 'examples';
  split: string;
  /** Index of the first example within its split. */
  start: number;
  count: number;
  /**
   * Number of examples in the whole split, when the format says so in advance (an IDX header);
   * undefined when the decoder learns it only at the split's end (fixed-size records).
   */
  splitSize?: number;
  /** Shape of one example, e.g. [28, 28]. */
  shape: readonly number[];
  /** Values per example: the product of `shape`. */
  width: number;
  /** `count × width` values, row-major. Bytes stay bytes; wider dtypes arrive as float32. */
  data: Uint8Array | Float32Array;
  /** `count` class labels. */
  labels: Int32Array;
  /** The number of classes: labels lie in [0, classes). The same in every split. */
  classes: number;
  /** A name per class, when the dataset has them (`decodeIdx.classNames`). */
  classNames?: readonly string[];
  /** The images file, for messages. */
  source: string;
}

/** Every example of a split has been emitted. */
export interface SplitEnd {
  kind: 'split-end';
  split: string;
  count: number;
}

/**
 * The feature transform, final: normalise sends it once, before any consumer needs it (at once
 * for a fixed scale and shift; when the statistics split ends for statistics from the data).
 * Frozen, like its transform; a consumer keeps the latest one it received.
 */
export interface Features {
  readonly kind: 'features';
  readonly transform: FeatureTransform;
}

/** A frozen `features` message holding a frozen transform of these parts. */
export function featuresMessage(parts: FeatureTransform): Features {
  return Object.freeze({ kind: 'features', transform: featureTransform(parts) });
}

/** Consecutive training samples drawn by a sampler. */
export interface SampleBlock {
  kind: 'samples';
  /** Id of the sampler stage that drew them. */
  sampler: string;
  /** 0-based pass over the training data these samples belong to (blocks never span passes). */
  epoch: number;
  /**
   * The sampler's state just before this block's first sample: small plain data that, restored,
   * makes the sampler draw this block again. Checkpoints record it with a count of samples used.
   */
  position: unknown;
  /** Samples already drawn in this epoch before this block. */
  index: number;
  /** Samples in the training set the sampler draws from. */
  population: number;
  count: number;
  width: number;
  shape: readonly number[];
  /**
   * The samples' values. Without `rows`: `count × width` values, one sample after another. With
   * `rows`: a table shared by every block (the sampler's whole training set, never changed while
   * sampling), and sample i is its row `rows[i]` — the block then holds no copy of the data.
   */
  data: Uint8Array | Float32Array;
  /** Labels, indexed like the rows of `data`. */
  labels: Int32Array;
  /** Row of `data` (and `labels`) of each sample, when `data` is a shared table. */
  rows?: Int32Array;
  /**
   * The shared table is handed over to the stage that reads these blocks: nothing else reads it
   * any more, and that stage may write over rows it has read with a form of its own (the softmax
   * kernel keeps byte rows' non-zeros in their place: kernels/reusedRows.ts). A sampler sets it
   * only when its context says so (`StageContext.samplesHandedOver`).
   */
  reusable?: boolean;
  classes: number;
  classNames?: readonly string[];
  /** The latest `features` message's transform when the block was drawn. */
  transform: FeatureTransform;
}

/** Row of `data`/`labels` holding sample i of a block. */
export function sampleRow(block: SampleBlock, i: number): number {
  return block.rows ? block.rows[i]! : i;
}

/** Results of one evaluation of a model on one split. */
export interface EvalResult {
  split: string;
  step: number;
  epoch: number;
  examples: number;
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** confusion[true * classes + predicted] = count. */
  confusion: number[];
  /** Test-set indices of a few misclassified examples, with their predictions. */
  misclassified: { index: number; label: number; predicted: number }[];
}

/**
 * A checkpoint barrier, sent by the pipeline right behind the model it checkpoints. Every stage
 * passes it on like any message it does not know; as it reaches a stateful stage the pipeline
 * records that stage's state (Chandy–Lamport: every message before the barrier handled, none
 * after). The run's sink writes the checkpoint and settles it. Built in checkpoints.ts.
 */
export interface CheckpointBarrier {
  kind: 'checkpoint';
  reason: 'interval' | 'time' | 'signal' | 'final' | 'early-stop';
  /** The model this checkpoint holds (its results are those evaluated before the barrier). */
  model: ModelSnapshot;
  /** The stage that sent it (the model producer): stages after it add their state. */
  origin: string;
  /** Plain state of each stateful stage, by stage id. */
  states: Record<string, unknown>;
  /** Called by the sink once the checkpoint is durable (or failed). */
  settle(error?: unknown): void;
  /** Resolves when the sink has written the checkpoint. */
  written: Promise<void>;
}

/** The model at a step, copied, for evaluators, checkpoints and the final result. */
export interface ModelSnapshot {
  kind: 'snapshot';
  step: number;
  /** Completed passes over the training data, fractional. */
  epoch: number;
  samples: number;
  /**
   * Every parameter, layer after layer, each row-major [inputs (+1 bias row), units]: for softmax
   * regression [inputs (+1 bias), classes] (kernels/architecture.ts).
   */
  weights: Float32Array;
  /** The model's layers: softmax regression, or an MLP's hidden layers and activation. */
  architecture: Architecture;
  classes: number;
  /** Shape of one input example, e.g. [28, 28] or [3, 32, 32] (channels first). */
  shape: readonly number[];
  classNames?: readonly string[];
  transform: FeatureTransform;
  /** The evaluator should evaluate this one. */
  evaluate: boolean;
  /** The last snapshot of the run. */
  final: boolean;
  /** Filled in by evaluators as the snapshot passes. */
  results: EvalResult[];
  /** Set by a stage that asks training to stop early (e.g. early stopping). */
  stopReason?: string;
  /** On the final snapshot: why training ended. */
  endedBy?: TrainingEnd;
}

/**
 * Why training ended: every pass done (`epochs`), the step cap reached (`steps`), an evaluator's
 * early stopping (`early-stop`), or the samples ran out before either (`input`).
 */
export type TrainingEnd = 'epochs' | 'steps' | 'early-stop' | 'input';

export type Message =
  | FileChunk
  | Examples
  | SplitEnd
  | Features
  | SampleBlock
  | ModelSnapshot
  | CheckpointBarrier;
export type MessageKind = Message['kind'];

/** Bytes a message holds, for byte capacities on edges. */
export function messageBytes(message: Message): number {
  switch (message.kind) {
    case 'bytes':
      return message.bytes.byteLength;
    case 'examples':
      return message.data.byteLength + message.labels.byteLength;
    case 'samples':
      // A block indexing a shared table holds only its row numbers.
      if (message.rows) return message.rows.byteLength;
      return message.data.byteLength + message.labels.byteLength;
    case 'snapshot':
      return message.weights.byteLength;
    default:
      return 0;
  }
}
