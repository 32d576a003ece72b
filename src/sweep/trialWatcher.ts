/**
 * Follows a running trial's `events.ndjson` as it grows: the sweep learns of each evaluation (ASHA's
 * rungs), the data being ready, and the progress it draws, from the trial's own log — the same
 * record `rxtrain report` reads later. A change notification (fs.watch) triggers a read at once, so
 * ASHA stops a trial within a few steps of its rung; a slow poll covers file systems without one.
 * A resumed trial cuts its log back to its checkpoint: a file shorter than what was read is read
 * again from the start (the events up to the cut are the same ones, and consumers ignore repeats).
 */
import { closeSync, type FSWatcher, openSync, readSync, statSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import type { RxtrainEvent } from '../pipeline/events.js';

export class TrialWatcher {
  private offset = 0;
  /** Bytes after the last newline read: a line still being written (perhaps mid-character). */
  private partial: Buffer = Buffer.alloc(0);
  private watcher: FSWatcher | undefined;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly onEvent: (event: RxtrainEvent) => void,
    pollMs = 250,
  ) {
    try {
      this.watcher = watch(dirname(path), () => this.read());
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = undefined; // no change notifications here: the poll alone
    }
    this.timer = setInterval(() => this.read(), pollMs);
    this.timer.unref();
  }

  /** Read what was appended since the last read; emit every complete line. */
  read(): void {
    if (this.stopped) return;
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return; // not created yet
    }
    if (size < this.offset) {
      this.offset = 0;
      this.partial = Buffer.alloc(0);
    }
    if (size === this.offset) return;
    const fd = openSync(this.path, 'r');
    let bytes: Buffer;
    try {
      const buffer = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buffer, 0, buffer.length, this.offset);
      this.offset += n;
      bytes = Buffer.concat([this.partial, buffer.subarray(0, n)]);
    } finally {
      closeSync(fd);
    }
    const end = bytes.lastIndexOf(0x0a) + 1;
    this.partial = bytes.subarray(end);
    for (const line of bytes.subarray(0, end).toString('utf8').split('\n')) {
      if (!line) continue;
      let event: RxtrainEvent;
      try {
        event = JSON.parse(line) as RxtrainEvent;
      } catch {
        continue;
      }
      this.onEvent(event);
    }
  }

  /** A last read (what the trial wrote before it exited), then no more. */
  stop(): void {
    this.read();
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.close();
  }
}
