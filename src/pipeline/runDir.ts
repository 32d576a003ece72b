/**
 * The run directory: its layout, its lock, and its event log. The run writes it (run.ts), a
 * resume continues it (resume.ts), the report reads it (report/runDir.ts).
 *
 *   runs/<name>-<YYYYMMDD-HHMMSS>/
 *     config.yaml       the resolved config (defaults filled in, overrides applied)
 *     run.json          where relative paths in it resolve, its hash, the rxtrain version
 *     run.lock          held by the process writing the run
 *     events.ndjson     one JSON event per line
 *     weights.f32       final weights, float32 little-endian, row-major [rows, classes]
 *     model.json        their shape, the feature transform, and their sha256
 *     summary.json      status, steps, epochs, test accuracy and loss, weightsSha256, durationMs
 *     checkpoints/      checkpoint files (checkpointFile.ts)
 *
 * A resumed run continues in the same directory: the event log is cut where the checkpoint was
 * taken, so it stays one history in which no step appears twice.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { removeStaleTemps, writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { FileLock, tryLockNow } from '../util/fileLock.js';
import { VERSION } from '../util/version.js';
import type { LoadedCheckpoint } from './checkpointFile.js';
import { type ExperimentConfig, resolvedYaml } from './config.js';
import { type Clock, EventBus, NdjsonLog, parseEvents, type RxtrainEvent } from './events.js';

/** The files of a run directory, by role. */
export const RUN_FILES = {
  config: 'config.yaml',
  record: 'run.json',
  lock: 'run.lock',
  events: 'events.ndjson',
  weights: 'weights.f32',
  model: 'model.json',
  summary: 'summary.json',
  checkpoints: 'checkpoints',
} as const;

/** Where a resumed run continues from (built by resume.ts). */
export interface ResumePoint {
  /** The checkpoint to continue from; absent: start over in the same directory. */
  checkpoint?: LoadedCheckpoint;
  /** Newer checkpoints that failed to verify, already set aside, and why. */
  invalid: { file: string; message: string }[];
}

/** run.json: what a resume needs besides config.yaml. */
export interface RunRecord {
  rxtrainVersion: string;
  /** The config file the run was started from. */
  configFile: string;
  /** Where relative paths in config.yaml resolve (the original config's directory). */
  baseDir: string;
  configHash: string;
}

/** The default cache directory: $RXTRAIN_CACHE, else $XDG_CACHE_HOME/rxtrain, else ~/.cache/rxtrain. */
export function defaultCacheDir(): string {
  if (process.env.RXTRAIN_CACHE) return resolve(process.env.RXTRAIN_CACHE);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'rxtrain');
}

export function configHash(config: ExperimentConfig): string {
  return createHash('sha256').update(resolvedYaml(config)).digest('hex');
}

/**
 * Create a fresh run directory `<runsDir>/<name>-<stamp>` (`-2`, `-3`… when taken): each candidate
 * is created with an exclusive mkdir, so runs started in the same second never share one.
 */
export function createRunDir(runsDir: string, name: string, date: Date): string {
  const stamp = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  mkdirIo(runsDir, true);
  for (let i = 1; ; i++) {
    const dir = join(runsDir, i === 1 ? `${name}-${stamp}` : `${name}-${stamp}-${i}`);
    try {
      mkdirSync(dir);
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw dirError(dir, error);
    }
  }
}

function mkdirIo(dir: string, recursive: boolean): void {
  try {
    mkdirSync(dir, { recursive });
  } catch (error) {
    throw dirError(dir, error);
  }
}

function dirError(dir: string, error: unknown): RxtrainError {
  return new RxtrainError(
    'E_IO',
    `${dir}: cannot create run directory (${(error as NodeJS.ErrnoException).code})`,
  );
}

/**
 * Take `<runDir>/run.lock` (util/fileLock.ts: created with O_EXCL, held with a heartbeat, taken over
 * only from a holder that is gone — a dead or zombie process on this host — by a safe rename-aside),
 * so that two processes never write one run. Nothing is written into the directory before it.
 */
export function lockRunDir(runDir: string): FileLock {
  mkdirIo(runDir, true);
  const path = join(runDir, RUN_FILES.lock);
  const lock = tryLockNow(path);
  if (lock instanceof FileLock) return lock;
  const who = lock.heldBy
    ? `rxtrain process ${lock.heldBy.pid} on ${lock.heldBy.host}`
    : 'another rxtrain process';
  throw new RxtrainError('E_USAGE', `${runDir}: in use by ${who} (if no rxtrain runs there, delete ${path})`);
}

/**
 * Lay out a locked run directory: a new run's must hold nothing but its lock; the resolved config
 * and run.json are written; temporary files a killed writer left are removed.
 */
export function prepareRunDir(
  runDir: string,
  config: ExperimentConfig,
  hash: string,
  mode: 'new' | 'resume' | 'replace',
): void {
  const resuming = mode === 'resume';
  const earlier = readdirSync(runDir).filter((name) => name !== RUN_FILES.lock);
  if (mode === 'replace') {
    // Under the lock: whatever an earlier run left goes, and this one starts afresh.
    for (const name of earlier) rmSync(join(runDir, name), { recursive: true, force: true });
  } else if (!resuming && earlier.length > 0) {
    throw new RxtrainError('E_USAGE', `${runDir}: ${whatIsThere(runDir)}`);
  }
  mkdirIo(join(runDir, RUN_FILES.checkpoints), true);
  removeStaleTemps(runDir);
  removeStaleTemps(join(runDir, RUN_FILES.checkpoints));
  if (resuming) return;
  writeFileAtomic(join(runDir, RUN_FILES.config), resolvedYaml(config));
  const record: RunRecord = {
    rxtrainVersion: VERSION,
    configFile: resolve(config.file),
    baseDir: config.baseDir,
    configHash: hash,
  };
  writeFileAtomic(join(runDir, RUN_FILES.record), JSON.stringify(record, null, 2) + '\n');
}

/** sha256 of each user stage module of a config, by resolved path. */
export function moduleDigests(config: ExperimentConfig): Record<string, string> {
  const digests: Record<string, string> = {};
  for (const m of config.modules) {
    const path = resolve(config.baseDir, m);
    try {
      digests[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
    } catch (error) {
      throw new RxtrainError(
        'E_IO',
        `${path}: cannot read stage module (${(error as NodeJS.ErrnoException).code})`,
      );
    }
  }
  return digests;
}

/** What holds a run directory that is not empty, and how to go on. */
function whatIsThere(runDir: string): string {
  let status: string | undefined;
  try {
    status = (JSON.parse(readFileSync(join(runDir, RUN_FILES.summary), 'utf8')) as { status?: string })
      .status;
  } catch {
    // No summary: a run that was killed, or not a run directory at all.
  }
  const how = `rxtrain resume ${runDir} continues it; --force replaces it`;
  if (status === 'completed')
    return 'holds a completed run (--force replaces it, or choose another --run-dir)';
  if (status) return `holds a run that ${status === 'failed' ? 'failed' : 'was interrupted'} (${how})`;
  if (existsSync(join(runDir, RUN_FILES.config))) return `holds a run that did not finish (${how})`;
  return 'exists and is not empty (choose another --run-dir, or --force to empty it)';
}

/** The event bus and log; a resumed run's log is cut where its checkpoint was taken. */
export function openEventLog(
  runDir: string,
  clock: Clock,
  resume: ResumePoint | undefined,
): { events: EventBus; log: NdjsonLog & { path: string }; eventsCut: number; earlier: RxtrainEvent[] } {
  const path = join(runDir, RUN_FILES.events);
  let offset = 0;
  let eventsCut = 0;
  let earlier: RxtrainEvent[] = [];
  if (resume && existsSync(path)) {
    const size = statSync(path).size;
    offset = Math.min(resume.checkpoint?.meta.eventsOffset ?? 0, size);
    eventsCut = size - offset;
    truncateSync(path, offset);
    earlier = parseEvents(readFileSync(path, 'utf8'));
  }
  const log = Object.assign(new NdjsonLog(path, offset), { path });
  return { events: new EventBus(clock, resume?.checkpoint?.meta.eventsSeq ?? 0), log, eventsCut, earlier };
}
