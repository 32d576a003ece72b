/**
 * Preloaded into a CLI process under test (`node --import`): every write of a checkpoint file
 * stops for SLOW_CHECKPOINT_MS with its temporary file half-written, so a test can kill the
 * process inside the write window, which is otherwise a few hundred microseconds wide. Production
 * code knows nothing of it.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const pauseMs = Number(process.env.SLOW_CHECKPOINT_MS) || 0;
const checkpointTemp = /\.ckpt-\d+\.rxckpt\.\d+\.\d+\.tmp$/;
const slow = new Set<number>();
const { openSync, writeSync, closeSync } = fs;

fs.openSync = ((path: fs.PathLike, ...rest: unknown[]) => {
  const fd = (openSync as (...a: unknown[]) => number)(path, ...rest);
  if (pauseMs > 0 && checkpointTemp.test(String(path))) slow.add(fd);
  return fd;
}) as typeof fs.openSync;

fs.writeSync = ((fd: number, buffer: Uint8Array, ...rest: unknown[]) => {
  if (!slow.has(fd) || typeof buffer === 'string' || typeof rest[0] !== 'number') {
    return (writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
  }
  slow.delete(fd);
  const offset = rest[0];
  const length = typeof rest[1] === 'number' ? rest[1] : buffer.byteLength - offset;
  const half = length >> 1;
  const first = writeSync(fd, buffer, offset, half);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
  return first + writeSync(fd, buffer, offset + first, length - first);
}) as typeof fs.writeSync;

fs.closeSync = ((fd: number) => {
  slow.delete(fd);
  closeSync(fd);
}) as typeof fs.closeSync;

syncBuiltinESMExports();
