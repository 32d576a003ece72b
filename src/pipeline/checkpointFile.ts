/**
 * Checkpoint files. One file per checkpoint, complete or absent (written through a temp file,
 * fsynced, renamed: atomicFile.ts), ending with a sha256 of its own bytes that is verified on load:
 *
 *   "RXCKPT02"   8 bytes: magic and format version
 *   body         packed (packed.ts): { meta, model, states }. Typed arrays anywhere in a stage's
 *                state (weights, an optimiser's buffers) are binary sections, restored as typed
 *                arrays of the same type
 *   sha256       32 bytes, over everything before it
 *
 * A checkpoint holds the model as the run's outputs need it (weights, shape, feature transform,
 * the evaluations at that step), every stateful stage's state by stage id (the updater's includes
 * its weights and optimiser state, the sampler's its position, the evaluator's its history), the
 * resolved config's hash, the rxtrain version, and where the event log stood.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Architecture, checkArchitecture, parameterCount } from '../kernels/architecture.js';
import { type AtomicWriteOptions, ioError, writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { PackError, pack, unpack } from '../util/packed.js';
import type { EvalResult, FeatureTransform } from './messages.js';

const MAGIC = Buffer.from('RXCKPT02');
const DIGEST_BYTES = 32;
const NAME = /^ckpt-(\d+)\.rxckpt$/;

export interface CheckpointMeta {
  format: 2;
  rxtrainVersion: string;
  /** sha256 of the resolved config the run was started with (run.ts `configHash`). */
  configHash: string;
  step: number;
  epoch: number;
  samples: number;
  reason: string;
  /** Taken of the finished model: resuming it only writes the run's outputs. */
  final: boolean;
  /** Wall-clock time of writing, ISO 8601. */
  time: string;
  /** Byte length of events.ndjson just after this checkpoint's event: a resume cuts the log here. */
  eventsOffset: number;
  /** Sequence number of the next event. */
  eventsSeq: number;
  /** The best value of the keepBest metric up to this checkpoint, and the file holding it. */
  best: { metric: string; value: number; file: string } | null;
  /** What the run depended on (absent in checkpoints of older versions): resume checks it. */
  depends?: RunDependencies;
}

/** What a run's results depend on besides its config: resume refuses a change. */
export interface RunDependencies {
  /** The data stages' cache key: a digest of the source's bytes and the stages' settings. */
  data?: string;
  /** sha256 of each user stage module, by path. */
  modules: Record<string, string>;
}

/** The model at the checkpoint's step, as the run's outputs need it. */
export interface CheckpointModel {
  weights: Float32Array;
  architecture: Architecture;
  classes: number;
  /** Shape of one input example, and the class names when the data has them. */
  shape?: readonly number[];
  classNames?: readonly string[];
  transform: FeatureTransform;
  /** Evaluations of this snapshot (empty unless an evaluator ran at this step). */
  results: EvalResult[];
}

export interface Checkpoint {
  meta: CheckpointMeta;
  model: CheckpointModel;
  /** State of each stateful stage, by stage id; typed arrays come back as typed arrays. */
  states: Record<string, unknown>;
}

export interface LoadedCheckpoint extends Checkpoint {
  file: string;
}

export function checkpointFileName(step: number): string {
  return `ckpt-${String(step).padStart(9, '0')}.rxckpt`;
}

export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  let body: Buffer;
  try {
    body = pack(checkpoint);
  } catch (error) {
    if (error instanceof PackError)
      throw new RxtrainError('E_CHECKPOINT', `cannot store a stage's state: ${error.message}`);
    throw error;
  }
  const head = Buffer.concat([MAGIC, body]);
  return Buffer.concat([head, createHash('sha256').update(head).digest()]);
}

/** Decode and verify; throws E_CHECKPOINT naming the file and what is wrong with it. */
export function decodeCheckpoint(bytes: Buffer, file: string): LoadedCheckpoint {
  const bad = (detail: string) => new RxtrainError('E_CHECKPOINT', `${file}: ${detail}`);
  if (bytes.byteLength < MAGIC.byteLength + 4 + DIGEST_BYTES)
    throw bad(`truncated (${bytes.byteLength} bytes)`);
  const magic = bytes.subarray(0, MAGIC.byteLength);
  if (!magic.equals(MAGIC)) {
    throw bad(
      magic.subarray(0, 6).equals(MAGIC.subarray(0, 6))
        ? `checkpoint format ${magic.subarray(6).toString()} is not supported (this rxtrain reads ${MAGIC.subarray(6).toString()})`
        : 'not an rxtrain checkpoint (bad magic)',
    );
  }
  const end = bytes.byteLength - DIGEST_BYTES;
  const digest = createHash('sha256').update(bytes.subarray(0, end)).digest();
  if (!digest.equals(bytes.subarray(end))) throw bad('checksum mismatch (the file is corrupt or truncated)');
  let decoded: Checkpoint;
  try {
    decoded = unpack(bytes.subarray(MAGIC.byteLength, end)) as Checkpoint;
  } catch (error) {
    throw bad(`malformed (${(error as Error).message})`);
  }
  const { meta, model, states } = decoded ?? ({} as Checkpoint);
  if (meta?.format !== 2 || !model || !(model.weights instanceof Float32Array) || !states)
    throw bad('malformed (missing meta, model or states)');
  // Checkpoints from before the model was a setting hold softmax regression as rows × classes.
  const old = model as unknown as { rows?: number; architecture?: unknown };
  if (model.architecture === undefined && old.rows !== undefined && model.transform) {
    model.architecture = {
      type: 'softmax',
      inputShape: [model.transform.width],
      bias: model.transform.bias,
      hidden: [],
      classes: model.classes,
    };
    delete old.rows;
  }
  try {
    model.architecture = checkArchitecture(model.architecture, 'the model');
  } catch (error) {
    throw bad(`malformed (${(error as Error).message})`);
  }
  const expected = parameterCount(model.architecture);
  if (model.weights.length !== expected)
    throw bad(`expected ${expected} weights, found ${model.weights.length}`);
  return { meta, model, states, file };
}

export function readCheckpoint(file: string): LoadedCheckpoint {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new RxtrainError('E_CHECKPOINT', `${file}: cannot read (${(error as NodeJS.ErrnoException).code})`);
  }
  return decodeCheckpoint(bytes, file);
}

export interface WriteCheckpointOptions extends AtomicWriteOptions {
  /** How many of the newest checkpoints to keep. */
  keep: number;
  /** File names never removed by rotation (the best checkpoint). */
  protect?: ReadonlySet<string>;
}

/**
 * Write a checkpoint into `dir`, then drop all but the newest `keep` (and any protected one). The
 * old files go only after the new one is durable, so a failed write leaves them all in place.
 */
export function writeCheckpoint(
  dir: string,
  checkpoint: Checkpoint,
  options: WriteCheckpointOptions,
): { file: string; bytes: number } {
  const file = join(dir, checkpointFileName(checkpoint.meta.step));
  const bytes = encodeCheckpoint(checkpoint);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw ioError(dir, error);
  }
  writeFileAtomic(file, bytes, options);
  for (const old of listCheckpoints(dir).slice(options.keep)) {
    if (!options.protect?.has(old)) rmSync(join(dir, old), { force: true });
  }
  return { file, bytes: bytes.byteLength };
}

/** Checkpoint file names in `dir`, newest (highest step) first. */
export function listCheckpoints(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => NAME.test(n)).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
}

export interface InvalidCheckpoint {
  file: string;
  error: RxtrainError;
}

/**
 * The newest checkpoint that verifies, and every newer one that does not (a torn or corrupted
 * newest file falls back to the one before it).
 */
export function loadLatestCheckpoint(dir: string): {
  checkpoint: LoadedCheckpoint | undefined;
  invalid: InvalidCheckpoint[];
} {
  const invalid: InvalidCheckpoint[] = [];
  for (const name of listCheckpoints(dir)) {
    const file = join(dir, name);
    try {
      return { checkpoint: readCheckpoint(file), invalid };
    } catch (error) {
      if (!(error instanceof RxtrainError)) throw error;
      invalid.push({ file, error });
    }
  }
  return { checkpoint: undefined, invalid };
}

/** Rename a checkpoint that failed to verify out of rotation, keeping it for inspection. */
export function setAsideInvalid(file: string): string {
  const aside = `${file}.invalid`;
  renameSync(file, aside);
  return aside;
}
