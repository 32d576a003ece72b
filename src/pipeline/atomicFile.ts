/**
 * Files that are complete or absent, never half-written: write a temporary file beside the target,
 * fsync it, rename it over the target (atomic on POSIX file systems), then fsync the directory so
 * the rename itself survives a crash.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RxtrainError } from './errors.js';

let counter = 0;

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    let written = 0;
    while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    syncDirectory(dirname(path));
  } catch (error) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {}
    }
    rmSync(tmp, { force: true });
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new RxtrainError(
      'E_IO',
      `${path}: cannot write (${code}${code === 'ENOSPC' ? ': no space left on device' : ''})`,
      {
        cause: error,
      },
    );
  }
}

export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
