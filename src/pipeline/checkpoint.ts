/**
 * Checkpoint files. One file per checkpoint, complete or absent (written through a temp file,
 * fsynced, renamed), carrying a sha256 of its own bytes that is verified on load:
 *
 *   "RXCKPT01"            8 bytes, magic and format version
 *   header length         uint32 little-endian
 *   header                JSON: step, states of the stateful stages, config hash, version,
 *                         events offset, weights shape
 *   weights               float32 little-endian, row-major [rows, classes]
 *   sha256                32 bytes, over everything before it
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomicFile.js';
import { RxtrainError } from './errors.js';

const MAGIC = Buffer.from('RXCKPT01');

export interface CheckpointHeader {
  format: 1;
  rxtrainVersion: string;
  /** sha256 of the resolved config the run was started with. */
  configHash: string;
  step: number;
  epoch: number;
  samples: number;
  reason: string;
  time: string;
  /** Plain state of each stateful stage, by stage id. */
  states: Record<string, unknown>;
  /** Byte length of events.ndjson when this checkpoint was taken: a resume cuts the log here. */
  eventsOffset: number;
  /** Sequence number of the next event. */
  eventsSeq: number;
  rows: number;
  classes: number;
}

export interface Checkpoint {
  header: CheckpointHeader;
  weights: Float32Array;
  file: string;
}

export function checkpointFileName(step: number): string {
  return `ckpt-${String(step).padStart(9, '0')}.rxckpt`;
}

export function encodeCheckpoint(header: CheckpointHeader, weights: Float32Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.byteLength);
  const body = Buffer.concat([MAGIC, length, json, littleEndianFloats(weights)]);
  const digest = createHash('sha256').update(body).digest();
  return Buffer.concat([body, digest]);
}

/** Decode and verify; throws E_CHECKPOINT naming the file and what is wrong. */
export function decodeCheckpoint(bytes: Buffer, file: string): Checkpoint {
  const bad = (detail: string) => new RxtrainError('E_CHECKPOINT', `${file}: ${detail}`);
  if (bytes.byteLength < MAGIC.byteLength + 4 + 32) throw bad(`truncated (${bytes.byteLength} bytes)`);
  if (!bytes.subarray(0, MAGIC.byteLength).equals(MAGIC)) throw bad('not an rxtrain checkpoint (bad magic)');
  const body = bytes.subarray(0, bytes.byteLength - 32);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(bytes.byteLength - 32)))
    throw bad('checksum mismatch (corrupt or truncated)');
  const length = bytes.readUInt32LE(MAGIC.byteLength);
  const start = MAGIC.byteLength + 4;
  if (start + length > body.byteLength) throw bad('header runs past the end');
  const header = JSON.parse(body.subarray(start, start + length).toString('utf8')) as CheckpointHeader;
  const weightBytes = body.subarray(start + length);
  if (weightBytes.byteLength !== header.rows * header.classes * 4) {
    throw bad(
      `expected ${header.rows}×${header.classes} float32 weights, found ${weightBytes.byteLength} bytes`,
    );
  }
  const weights = new Float32Array(header.rows * header.classes);
  const view = new DataView(weightBytes.buffer, weightBytes.byteOffset, weightBytes.byteLength);
  for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(4 * i, true);
  return { header, weights, file };
}

/** Write a checkpoint into `dir` and drop all but the newest `keep` (and any `protect`ed one). */
export function writeCheckpoint(
  dir: string,
  header: CheckpointHeader,
  weights: Float32Array,
  keep: number,
  protect: ReadonlySet<string> = new Set(),
): { file: string; bytes: number } {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, checkpointFileName(header.step));
  const bytes = encodeCheckpoint(header, weights);
  writeFileAtomic(file, bytes);
  const files = listCheckpoints(dir);
  for (const old of files.slice(keep)) if (!protect.has(old)) rmSync(join(dir, old), { force: true });
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
  return names.filter((n) => /^ckpt-\d+\.rxckpt$/.test(n)).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
}

/**
 * The newest checkpoint that verifies. Each one that does not is reported through `onInvalid`
 * and skipped, so a torn or corrupted newest file falls back to the one before it.
 */
export function loadLatestCheckpoint(
  dir: string,
  onInvalid: (file: string, error: RxtrainError) => void,
): Checkpoint | undefined {
  for (const name of listCheckpoints(dir)) {
    const file = join(dir, name);
    try {
      return decodeCheckpoint(readFileSync(file), file);
    } catch (error) {
      const e =
        error instanceof RxtrainError
          ? error
          : new RxtrainError('E_CHECKPOINT', `${file}: ${(error as Error).message}`);
      onInvalid(file, e);
    }
  }
  return undefined;
}

/** Float32 weights as little-endian bytes, whatever the machine's byte order. */
export function littleEndianFloats(weights: Float32Array): Buffer {
  const out = Buffer.alloc(weights.length * 4);
  for (let i = 0; i < weights.length; i++) out.writeFloatLE(weights[i]!, 4 * i);
  return out;
}
