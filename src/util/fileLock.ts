/**
 * An exclusive lock between processes, as a file created with O_EXCL: whoever creates
 * `<target>.lock` owns it and writes its host, pid and a token into it; everyone else either waits
 * and polls (`acquireLock`) or is told who holds it (`tryLockNow`). The owner touches the file
 * while it holds the lock, so a lock is abandoned (stale) when its owner's process is gone or a
 * zombie (same host), or the file has not been touched for `staleMs` (another host; ten times that
 * on this host, in case the pid was reused).
 *
 * An abandoned lock is taken over by moving it aside and creating a fresh one. Several processes
 * may judge the same file stale at once; they take turns through a guard file (itself a lock of
 * this kind), and each checks under the guard that the file is still the one it judged. Without
 * the turns, a late one would move aside the lock that an earlier one had just created, and with
 * a third process creating meanwhile, two would believe they held the lock.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
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

export interface TryLockOptions {
  /** A lock file of another host untouched for this long is abandoned, ms (default 60 s). */
  staleMs?: number;
}

/** The answer of `tryLockNow` when someone else holds the lock. */
export interface LockBusy {
  /** Who holds it; undefined while its file cannot be read (its owner is still writing it). */
  heldBy: LockHolder | undefined;
}

export const DEFAULT_LOCK_STALE_MS = 60_000;

let tokens = 0;

/**
 * A held lock. `release` is idempotent and only ever removes this owner's own file. The heartbeat
 * timer is unref'd: holding a lock never keeps the process alive.
 */
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
  const holder = newHolder();
  let waited = false;
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason;
    const attempt = takeNow(path, holder, options.staleMs);
    if (attempt.taken) return new FileLock(path, holder, options.staleMs);
    if (!waited) {
      waited = true;
      options.onWait?.(attempt.heldBy);
    }
    await sleep(options.pollMs, options.signal);
  }
}

/**
 * Take the lock at `path` if it is free or abandoned (taking an abandoned one over as
 * `acquireLock` does), or say who holds it, without waiting.
 */
export function tryLockNow(path: string, options: TryLockOptions = {}): FileLock | LockBusy {
  const staleMs = options.staleMs ?? DEFAULT_LOCK_STALE_MS;
  const holder = newHolder();
  const attempt = takeNow(path, holder, staleMs);
  return attempt.taken ? new FileLock(path, holder, staleMs) : { heldBy: attempt.heldBy };
}

export function readHolder(path: string): LockHolder | undefined {
  try {
    return parseHolder(readFileSync(path, 'utf8'));
  } catch {
    return undefined; // missing
  }
}

function newHolder(): LockHolder {
  // The random part keeps tokens unique across pid reuse and worker threads (which share a pid).
  const token = `${process.pid}.${tokens++}.${randomBytes(4).toString('hex')}`;
  return { host: hostname(), pid: process.pid, token };
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.token === 'string') {
      return value as LockHolder;
    }
  } catch {
    // Caught between creation and its first write, or not a lock file of ours.
  }
  return undefined;
}

type Attempt = { taken: true } | { taken: false; heldBy: LockHolder | undefined };

/** Create the lock file as `self`, taking over abandoned ones; never waits. */
function takeNow(path: string, self: LockHolder, staleMs: number): Attempt {
  for (;;) {
    if (tryCreate(path, self)) return { taken: true };
    const seen = inspect(path);
    if (!seen) continue; // released between our attempt and now: try again at once
    if (!abandoned(seen, self.host, staleMs)) return { taken: false, heldBy: seen.holder };
    const breaker = breakAbandoned(path, seen, self, staleMs);
    if (breaker) return breaker;
  }
}

/** One lock file as found: who holds it, when it was last touched, and which file it is. */
interface LockFile {
  holder: LockHolder | undefined;
  mtimeMs: number;
  /** The inode and the holder's token: a lock made since has another (the inode may be reused). */
  id: string;
}

function inspect(path: string): LockFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Unreadable (another user's): judge it by its time alone.
    try {
      const stat = statSync(path);
      return { holder: undefined, mtimeMs: stat.mtimeMs, id: `${stat.ino}@${stat.mtimeMs}` };
    } catch {
      return undefined;
    }
  }
  try {
    // Status and contents from one open file: the path may be replaced between two lookups.
    const stat = fstatSync(fd);
    const holder = parseHolder(readFileSync(fd, 'utf8'));
    const id = holder ? `${stat.ino}/${holder.token}` : `${stat.ino}@${stat.mtimeMs}`;
    return { holder, mtimeMs: stat.mtimeMs, id };
  } finally {
    closeSync(fd);
  }
}

function abandoned(file: LockFile, host: string, staleMs: number): boolean {
  // The real wall clock, not the run's: it is compared with times the kernel stamped.
  const quiet = Date.now() - file.mtimeMs;
  // On this host the owner's pid says whether it lives; a busy owner may miss heartbeats, so
  // silence alone counts only when it is very long (the pid may have been reused).
  if (file.holder !== undefined && file.holder.host === host) {
    return !isAlive(file.holder.pid) || quiet > 10 * staleMs;
  }
  return quiet > staleMs;
}

/**
 * Remove the abandoned lock file `judged`, unless it changed since it was judged. Those who judged
 * the same file take turns through `<path>.break.<id>`, a lock of the same kind (so a breaker that
 * died holding it is itself taken over). Returns who holds the turn when it is not us: they are
 * taking the lock over right now.
 */
function breakAbandoned(
  path: string,
  judged: LockFile,
  self: LockHolder,
  staleMs: number,
): Attempt | undefined {
  const guard = `${path}.break.${createHash('sha256').update(judged.id).digest('hex').slice(0, 16)}`;
  const turn = takeNow(guard, self, staleMs);
  if (!turn.taken) return turn;
  try {
    if (inspect(path)?.id === judged.id) moveAside(path, judged, self);
  } finally {
    rmSync(guard, { force: true });
  }
  return undefined;
}

/**
 * Move the lock file out of the way. Only the guard's holder does this, after checking the file,
 * so what is moved is the judged file; should it not be, it is put back.
 */
function moveAside(path: string, judged: LockFile, self: LockHolder): void {
  const aside = `${path}.stale.${self.token}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // gone already
    // Say so rather than judge the same file again and again (another user's, in a sticky /tmp).
    throw new RxtrainError('E_CACHE', `${path}: cannot take over the abandoned lock (${code})`, {
      cause: error,
    });
  }
  if (inspect(aside)?.id !== judged.id) {
    try {
      linkSync(aside, path);
    } catch {
      // Someone created a new lock in the moment it was away; the one we moved has lost its lock
      // and will see so on release.
    }
  }
  rmSync(aside, { force: true });
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
