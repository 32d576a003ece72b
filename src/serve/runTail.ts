/**
 * One run directory followed as it is written: its event log read from where the last read
 * stopped (never from the start again), its other files noticed when they change.
 *
 * - Only complete lines are parsed; the bytes of a line still being written wait in `pending`, as
 *   bytes, so a multi-byte character split across two reads is decoded whole.
 * - A log that got shorter was cut by `rxtrain resume` (back to its checkpoint): it is read again
 *   from the start.
 * - Only the last evaluation of each split keeps its confusion matrix and per-class scores (the
 *   curves need three numbers of the others), so a long run's state grows by a few numbers per
 *   event, not by a matrix.
 * - Files are opened with O_NOFOLLOW: a run's events.ndjson that is a symbolic link is not read.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RxtrainEvent } from '../pipeline/events.js';
import { absorbEvent, emptyLog, type RunData, type RunLog, runData } from '../report/runDir.js';
import { describeError } from '../util/errors.js';

/** The files besides the log whose changes the page shows. */
const WATCHED_FILES = ['summary.json', 'config.yaml', 'model.json', 'weights.f32'] as const;
/** Most bytes read from a log at once: a huge log is caught up over several refreshes. */
const READ_LIMIT = 8 * 1024 * 1024;

export class RunTail {
  private log: RunLog = emptyLog();
  private offset = 0;
  private pending = Buffer.alloc(0);
  private stamps = new Map<string, string>();
  private data?: RunData;
  /** Bumped on every change the page shows. */
  version = 0;

  constructor(
    readonly dir: string,
    readonly key: string,
  ) {}

  /**
   * Read what was added since the last call. Returns false when the run is gone (its directory or
   * log deleted, or the log replaced by something that is not a file).
   */
  refresh(): boolean {
    const file = join(this.dir, 'events.ndjson');
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return false;
    }
    let changed = false;
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) return false;
      if (stat.size < this.offset) {
        this.log = emptyLog();
        this.offset = 0;
        this.pending = Buffer.alloc(0);
        changed = true;
      }
      const length = Math.min(stat.size - this.offset, READ_LIMIT);
      if (length > 0) {
        const bytes = Buffer.alloc(length);
        const read = readSync(fd, bytes, 0, length, this.offset);
        this.offset += read;
        changed = this.absorb(bytes.subarray(0, read)) || changed;
      }
    } finally {
      closeSync(fd);
    }
    for (const name of WATCHED_FILES) {
      const stamp = stampOf(join(this.dir, name));
      if (stamp !== (this.stamps.get(name) ?? '')) {
        this.stamps.set(name, stamp);
        changed = true;
      }
    }
    if (changed) {
      this.version++;
      this.data = undefined;
    }
    return true;
  }

  /** More of the log than one refresh reads is still waiting. */
  get behind(): boolean {
    try {
      return lstatSync(join(this.dir, 'events.ndjson')).size > this.offset;
    } catch {
      return false;
    }
  }

  private absorb(bytes: Buffer): boolean {
    const all = this.pending.length ? Buffer.concat([this.pending, bytes]) : bytes;
    const end = all.lastIndexOf(0x0a);
    if (end < 0) {
      this.pending = Buffer.from(all);
      return false;
    }
    this.pending = Buffer.from(all.subarray(end + 1));
    let changed = false;
    for (const line of all.toString('utf8', 0, end).split('\n')) {
      if (!line) continue;
      let event: RxtrainEvent;
      try {
        event = JSON.parse(line) as RxtrainEvent;
      } catch {
        continue; // a torn line a killed run left behind
      }
      if (!event || typeof event !== 'object') continue;
      if (absorbEvent(this.log, event)) {
        changed = true;
        if (event.type === 'eval') this.lighten(event.split);
      }
    }
    return changed;
  }

  /** Keep the matrix and per-class scores of the last evaluation of `split` only. */
  private lighten(split: string): void {
    const evals = this.log.evals;
    for (let i = evals.length - 2; i >= 0; i--) {
      const e = evals[i]!;
      if (e.split !== split) continue;
      if (!e.confusion && !e.misclassified) break;
      const { confusion: _c, precision: _p, recall: _r, f1: _f, misclassified: _m, ...light } = e;
      evals[i] = light;
      break;
    }
  }

  /** What the report shows of the run now; its other files are read once per change. */
  snapshot(): RunData {
    if (this.data) return this.data;
    try {
      this.data = runData(this.dir, this.key, this.log);
    } catch (error) {
      // A file half-written or deleted under us: show the curves, say why the rest is missing.
      const dirName = basename(this.dir);
      this.data = {
        dir: this.dir,
        key: this.key,
        dirName,
        label: dirName,
        name: this.log.name ?? dirName,
        status: this.log.finished ?? 'running',
        train: this.log.train,
        evals: this.log.evals,
        notes: [`could not read the run directory: ${describeError(error)}`],
      };
    }
    return this.data;
  }
}

/** Size and modification time of a file, or '' when it is not there. */
function stampOf(path: string): string {
  try {
    const s = lstatSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return '';
  }
}
