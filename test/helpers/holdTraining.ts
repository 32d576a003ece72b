/**
 * Preloaded into a CLI process under test (`node --import`): once the run has written
 * HOLD_AFTER_TRAIN `train` events to its events.ndjson, the whole process stops — synchronously,
 * right after that line is written — until the file HOLD_RELEASE exists (or HOLD_LIMIT_MS, 120 s
 * by default, have passed). It writes HOLD_RELEASE + '.held' when it stops. A test can then look
 * at a run that is certainly mid-way, however fast training is on the machine. Production code
 * knows nothing of it.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const after = Number(process.env.HOLD_AFTER_TRAIN) || 0;
const release = process.env.HOLD_RELEASE ?? '';
const limitMs = Number(process.env.HOLD_LIMIT_MS) || 120_000;
const logs = new Set<number>();
let trains = 0;
const { openSync, writeSync, closeSync, existsSync, writeFileSync } = fs;

fs.openSync = ((path: fs.PathLike, ...rest: unknown[]) => {
  const fd = (openSync as (...a: unknown[]) => number)(path, ...rest);
  if (String(path).endsWith('events.ndjson')) logs.add(fd);
  return fd;
}) as typeof fs.openSync;

fs.writeSync = ((fd: number, buffer: unknown, ...rest: unknown[]) => {
  const written = (writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
  if (
    after > 0 &&
    release &&
    logs.has(fd) &&
    String(buffer).includes('"type":"train"') &&
    ++trains === after
  ) {
    writeFileSync(`${release}.held`, String(process.pid));
    const until = Date.now() + limitMs;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    while (!existsSync(release) && Date.now() < until) Atomics.wait(sleeper, 0, 0, 25);
  }
  return written;
}) as typeof fs.writeSync;

fs.closeSync = ((fd: number) => {
  logs.delete(fd);
  closeSync(fd);
}) as typeof fs.closeSync;

syncBuiltinESMExports();
