/**
 * Every run under the directories `rxtrain serve` was given, kept current: a directory with an
 * events.ndjson is a run; the given directory itself, its subdirectories and theirs (a sweep's
 * runs) are looked at, nothing deeper, and no symbolic link is followed, so nothing outside the
 * given directories is ever listed.
 *
 * Changes arrive by fs.watch (inotify on Linux) on the given directories and on each run's
 * directory; a rescan every `rescanMs` catches what a watch can miss (a directory created and
 * filled before its watch was set, a file system without notifications, the watch limit). A
 * rescan stats a few files per run: its cost is bounded by the number of runs, whatever a browser
 * does. A run whose directory disappears is dropped; a watch that fails is closed and left to the
 * rescan — nothing a file system does brings the server down.
 */
import { createHash } from 'node:crypto';
import { type Dirent, type FSWatcher, lstatSync, readdirSync, realpathSync, watch } from 'node:fs';
import { join } from 'node:path';
import { RunTail } from './runTail.js';

export interface RunIndexOptions {
  /** Told (synchronously, possibly often) that something the page shows has changed. */
  onChange: () => void;
  /** Milliseconds between full rescans (default 2000). */
  rescanMs?: number;
}

/** How deep below a given directory runs are looked for: runs/<run>, sweeps/<sweep>/<run>. */
const MAX_DEPTH = 2;
/** Changes to one run within this many ms are read together. */
const SETTLE_MS = 30;

export interface IndexedRun {
  tail: RunTail;
  /** The given directory it was found under (its real path). */
  root: string;
}

export class RunIndex {
  private readonly found = new Map<string, IndexedRun>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly due = new Set<string>();
  private timer?: NodeJS.Timeout;
  private settle?: NodeJS.Timeout;
  private closed = false;
  /** The given directories, as real paths. */
  readonly roots: readonly string[];

  constructor(
    roots: readonly string[],
    private readonly options: RunIndexOptions,
  ) {
    this.roots = roots.map((r) => realpathSync(r));
  }

  start(): void {
    this.rescan();
    this.timer = setInterval(() => this.rescan(), this.options.rescanMs ?? 2000);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.settle);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** The runs, in the order of their directories' paths. */
  runs(): IndexedRun[] {
    return [...this.found.values()].sort((a, b) => (a.tail.dir < b.tail.dir ? -1 : 1));
  }

  get(key: string): IndexedRun | undefined {
    return this.found.get(key);
  }

  /** Look for new and vanished runs, and read what every run has added. */
  rescan(): void {
    if (this.closed) return;
    let changed = false;
    const seen = new Set<string>();
    for (const root of this.roots) {
      for (const dir of runDirsUnder(root, (d) => this.watchDir(d, () => this.rescanSoon()))) {
        const key = keyOf(dir);
        if (seen.has(key)) continue; // two given directories that overlap
        seen.add(key);
        if (this.found.has(key)) continue;
        const tail = new RunTail(dir, key);
        this.found.set(key, { tail, root });
        this.watchDir(dir, () => this.refreshSoon(key));
        changed = true;
      }
    }
    for (const key of [...this.found.keys()]) {
      if (!seen.has(key)) changed = this.drop(key) || changed;
      else changed = this.refresh(key) || changed;
    }
    if (changed) this.options.onChange();
  }

  private refresh(key: string): boolean {
    const run = this.found.get(key);
    if (!run) return false;
    const before = run.tail.version;
    if (!run.tail.refresh()) return this.drop(key);
    // A log longer than one read is caught up on the next turn of the event loop, not in one block.
    if (run.tail.behind) this.refreshSoon(key);
    return run.tail.version !== before;
  }

  private drop(key: string): boolean {
    const run = this.found.get(key);
    if (!run) return false;
    this.found.delete(key);
    this.watchers.get(run.tail.dir)?.close();
    this.watchers.delete(run.tail.dir);
    return true;
  }

  private refreshSoon(key: string): void {
    this.due.add(key);
    this.settle ??= setTimeout(() => {
      this.settle = undefined;
      if (this.closed) return;
      let changed = false;
      const keys = [...this.due];
      this.due.clear();
      for (const k of keys) {
        if (k === '') {
          this.rescan();
          continue;
        }
        changed = this.refresh(k) || changed;
      }
      if (changed) this.options.onChange();
    }, SETTLE_MS);
  }

  private rescanSoon(): void {
    this.refreshSoon('');
  }

  private watchDir(dir: string, onEvent: () => void): void {
    if (this.watchers.has(dir) || this.closed) return;
    try {
      const w = watch(dir, { persistent: false }, onEvent);
      // A watched directory that is deleted reports an error on some systems: stop watching it.
      w.on('error', () => {
        w.close();
        this.watchers.delete(dir);
        this.rescanSoon();
      });
      this.watchers.set(dir, w);
    } catch {
      // No watch (ENOSPC: the inotify limit, or the directory just vanished): the rescan covers it.
    }
  }
}

/** A run's id in URLs and element ids: its path's hash, the same after a server restart. */
export function keyOf(dir: string): string {
  return createHash('sha256').update(dir).digest('hex').slice(0, 12);
}

/**
 * Run directories under `root` (itself included), at most MAX_DEPTH levels down, never through a
 * symbolic link. `onBranch` is told each directory searched that is not a run (to watch it).
 */
export function runDirsUnder(root: string, onBranch: (dir: string) => void): string[] {
  const out: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (isRunDir(dir)) {
      out.push(dir);
      return;
    }
    onBranch(dir);
    if (depth === MAX_DEPTH) return;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    // Dirent.isDirectory() is false for a symbolic link to a directory: links are not followed.
    for (const e of entries) if (e.isDirectory()) visit(join(dir, e.name), depth + 1);
  };
  visit(root, 0);
  return out;
}

function isRunDir(dir: string): boolean {
  try {
    return lstatSync(join(dir, 'events.ndjson')).isFile();
  } catch {
    return false;
  }
}
