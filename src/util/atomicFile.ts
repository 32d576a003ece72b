/**
 * Files that are complete or absent, never half-written: write a temporary file beside the target,
 * fsync it, rename it over the target (atomic on POSIX file systems), then fsync the directory so
 * the rename itself survives a crash. A failed write removes its temporary file and leaves the
 * target as it was.
 */
import * as nodeFs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RxtrainError } from './errors.js';
import { isAlive } from './process.js';

/** The file-system calls an atomic write makes; tests substitute failing ones (a full disk). */
export interface AtomicFs {
  openSync(path: string, flags: string): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options: { force: boolean }): void;
}

export interface AtomicWriteOptions {
  fs?: AtomicFs;
  /**
   * Sleep this long with the temporary file half-written (tests use it to kill a process inside
   * the write window, which is otherwise a few hundred microseconds wide).
   */
  pauseMs?: number;
}

let counter = 0;

/** `.<name>.<pid>.<n>.tmp`: the pid lets a later process tell a dead writer's leftovers. */
const TEMP = /^\..+\.(\d+)\.\d+\.tmp$/;

export function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): void {
  const fs = options.fs ?? nodeFs;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    const half = options.pauseMs ? bytes.byteLength >> 1 : bytes.byteLength;
    let written = 0;
    while (written < half) written += fs.writeSync(fd, bytes, written, half - written);
    if (options.pauseMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, options.pauseMs);
    while (written < bytes.byteLength)
      written += fs.writeSync(fd, bytes, written, bytes.byteLength - written);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
  } catch (error) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {}
    }
    try {
      fs.rmSync(tmp, { force: true });
    } catch {}
    throw ioError(path, error);
  }
  syncDirectory(dirname(path));
}

/** An E_IO error naming the path and the system's reason, spelled out for a full disk. */
export function ioError(path: string, error: unknown): RxtrainError {
  if (error instanceof RxtrainError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  const reason =
    code === 'ENOSPC'
      ? ': no space left on device'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? ': not writable'
        : '';
  return new RxtrainError('E_IO', `${path}: cannot write (${code}${reason})`, { cause: error });
}

export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = nodeFs.openSync(dir, 'r');
    nodeFs.fsyncSync(fd);
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) nodeFs.closeSync(fd);
  }
}

/**
 * Remove temporary files that a killed writer left in `dir` (those of live processes stay: another
 * run may be writing). Returns the names removed.
 */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = nodeFs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(TEMP.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    nodeFs.rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
