/**
 * An exclusive lock between processes, as a file created with O_EXCL: whoever creates
 * `<target>.lock` owns it and writes its host, pid and a token into it; everyone else waits and
 * polls. The owner touches the file while it holds the lock, so a lock is abandoned (stale) when
 * its owner's process is gone (same host), or the file has not been touched for `staleMs` (another
 * host; ten times that on this host, in case the pid was reused). A waiter that finds a stale lock moves it aside and takes its place.
 */
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { sleep } from './backoff.js';
import { RxtrainError } from './errors.js';
import { isAlive } from './process.js';

export interface LockHolder {
  host: string;
  pid: number;
  token: string;
}

export interface LockOptions {
  /** A lock file untouched for this long is abandoned, ms. */
  staleMs: number;
  /** How often a waiter looks again, ms. */
  pollMs: number;
  signal?: AbortSignal;
  /** Called once, when we first have to wait, with the holder (if its file could be read). */
  onWait?: (holder: LockHolder | undefined) => void;
}

let tokens = 0;

/** A held lock. `release` is idempotent and only ever removes this owner's own file. */
export class FileLock {
  private released = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    readonly path: string,
    readonly holder: LockHolder,
    staleMs: number,
  ) {
    this.heartbeat = setInterval(
      () => {
        try {
          const now = new Date();
          utimesSync(path, now, now);
        } catch {
          // Lost (a waiter judged us stale and moved the file): release will find it gone.
        }
      },
      Math.max(50, Math.floor(staleMs / 4)),
    );
    this.heartbeat.unref();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    if (readHolder(this.path)?.token === this.holder.token) rmSync(this.path, { force: true });
  }
}

/** Take the lock at `path`, waiting while a live owner holds it. */
export async function acquireLock(path: string, options: LockOptions): Promise<FileLock> {
  const holder: LockHolder = { host: hostname(), pid: process.pid, token: `${process.pid}.${tokens++}` };
  let waited = false;
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (tryCreate(path, holder)) return new FileLock(path, holder, options.staleMs);
    const current = readHolder(path);
    let mtime: number;
    try {
      mtime = statSync(path).mtimeMs;
    } catch {
      continue; // released between our attempt and now: try again at once
    }
    // The real wall clock, not the run's: it is compared with times the kernel stamped.
    const quiet = Date.now() - mtime;
    const sameHost = current !== undefined && current.host === holder.host;
    // On this host the owner's pid says whether it lives; a busy owner may miss heartbeats, so
    // silence alone counts only when it is very long (the pid may have been reused).
    const abandoned = sameHost
      ? !isAlive(current.pid) || quiet > 10 * options.staleMs
      : quiet > options.staleMs;
    if (abandoned) {
      removeStale(path, current, holder);
      continue;
    }
    if (!waited) {
      waited = true;
      options.onWait?.(current);
    }
    await sleep(options.pollMs, options.signal);
  }
}

function tryCreate(path: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'ENOENT') {
      // The directory went away (a failed download tidies its empty entry): make it again.
      mkdirSync(dirname(path), { recursive: true });
      return tryCreate(path, holder);
    }
    throw new RxtrainError(
      'E_CACHE',
      `${path}: cannot create lock file (${(error as NodeJS.ErrnoException).code})`,
      { cause: error },
    );
  }
  try {
    writeSync(fd, JSON.stringify(holder));
  } finally {
    closeSync(fd);
  }
  return true;
}

export function readHolder(path: string): LockHolder | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.token === 'string') {
      return value as LockHolder;
    }
  } catch {
    // Missing, or caught between creation and its first write.
  }
  return undefined;
}

/**
 * Move an abandoned lock aside. Two waiters may judge the same lock stale at once; the rename
 * lets only one of them have it, and if what was moved turns out to be a newer owner's lock (the
 * other waiter got there first), it is put back.
 */
function removeStale(path: string, judged: LockHolder | undefined, self: LockHolder): void {
  const aside = `${path}.stale.${self.token}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved or released it
  }
  const moved = readHolder(aside);
  if (moved && moved.token !== judged?.token) {
    try {
      linkSync(aside, path);
    } catch {
      // A third owner already holds the path; the one we moved has lost its lock and will see
      // so on release.
    }
  }
  rmSync(aside, { force: true });
}
