/**
 * A run directory as one byte string, the form in which a trial travels between machines: every
 * file but the run lock, temporary files and checkpoints older than the newest. The newest
 * checkpoint file is complete (checkpointFile.ts writes it whole or not at all) and its event was
 * written to the log before it, so the copied log reaches at least the offset `rxtrain resume`
 * cuts it back to: any bundle resumes.
 *
 *   "RXRUN1\n"  u32 header length  header (JSON: [{path, size}])  file bytes, in header order
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { RUN_FILES } from '../pipeline/runDir.js';
import { RxtrainError } from '../util/errors.js';

const MAGIC = Buffer.from('RXRUN1\n');

function filesOf(dir: string): string[] {
  const all: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue; // atomicFile.ts's temporary files
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) all.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  const checkpoints = all
    .filter((f) => f.startsWith(`${RUN_FILES.checkpoints}/`) && f.endsWith('.rxckpt'))
    .sort();
  const older = new Set(checkpoints.slice(0, -1));
  return all.filter((f) => f !== RUN_FILES.lock && !older.has(f));
}

/** The newest checkpoint's file name in a run directory, if any. */
export function newestCheckpoint(dir: string): string | undefined {
  try {
    return readdirSync(join(dir, RUN_FILES.checkpoints))
      .filter((f) => f.endsWith('.rxckpt'))
      .sort()
      .at(-1);
  } catch {
    return undefined;
  }
}

export function packRunDir(dir: string): Buffer {
  const parts: Buffer[] = [];
  const header: { path: string; size: number }[] = [];
  for (const path of filesOf(dir)) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(dir, path));
    } catch {
      continue; // rotated out between the listing and the read
    }
    header.push({ path, size: bytes.byteLength });
    parts.push(bytes);
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.byteLength);
  return Buffer.concat([MAGIC, length, json, ...parts]);
}

/** Replace `dir` with the bundle's files. */
export function unpackRunDir(bytes: Buffer, dir: string): void {
  const bad = (why: string) => new RxtrainError('E_QUEUE', `run bundle for ${dir}: ${why}`);
  if (!bytes.subarray(0, MAGIC.byteLength).equals(MAGIC)) throw bad('not a run bundle');
  const length = bytes.readUInt32BE(MAGIC.byteLength);
  let offset = MAGIC.byteLength + 4;
  const header = JSON.parse(bytes.subarray(offset, offset + length).toString('utf8')) as {
    path: string;
    size: number;
  }[];
  offset += length;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const { path, size } of header) {
    // Paths were written by packRunDir; a hostile one must still not leave the directory.
    if (path.split('/').some((p) => p === '..' || p === '') || path.startsWith('/'))
      throw bad(`unsafe path ${path}`);
    if (offset + size > bytes.byteLength) throw bad('truncated');
    const target = join(dir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, bytes.subarray(offset, offset + size));
    offset += size;
  }
}

/** Bytes a run directory would bundle to (for the size checks in docs and the bench). */
export function bundleSize(dir: string): number {
  return filesOf(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}
