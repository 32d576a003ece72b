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
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ioError, isAlive, removeStaleTemps, writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { VERSION } from '../version.js';
import type { LoadedCheckpoint } from './checkpointFile.js';
import { type ExperimentConfig, resolvedYaml } from './config.js';
import { type Clock, EventBus, NdjsonLog } from './events.js';

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

/** A fresh, unused run directory name. */
export function newRunDir(runsDir: string, name: string, date: Date): string {
  const stamp = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  let dir = join(runsDir, `${name}-${stamp}`);
  for (let i = 2; existsSync(dir); i++) dir = join(runsDir, `${name}-${stamp}-${i}`);
  return dir;
}

export function prepareRunDir(
  runDir: string,
  config: ExperimentConfig,
  hash: string,
  resuming: boolean,
): void {
  if (!resuming && existsSync(runDir) && readdirSync(runDir).length > 0) {
    throw new RxtrainError(
      'E_USAGE',
      `${runDir}: run directory exists and is not empty (use rxtrain resume, or another --run-dir)`,
    );
  }
  try {
    mkdirSync(join(runDir, RUN_FILES.checkpoints), { recursive: true });
  } catch (error) {
    throw new RxtrainError(
      'E_IO',
      `${runDir}: cannot create run directory (${(error as NodeJS.ErrnoException).code})`,
    );
  }
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

/**
 * Take `<runDir>/run.lock` for this process, so that two processes never write one run (a
 * `resume` while the run still goes on). The lock of a process that is gone (killed) is taken over,
 * and so is one of this process (resume.ts takes it before it changes anything). Returns the release.
 */
export function lockRunDir(runDir: string): () => void {
  const path = join(runDir, RUN_FILES.lock);
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        // Only our own: after we let go, another process may hold it.
        if (lockHolder(path) === process.pid) rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(path, error);
    }
    const pid = lockHolder(path);
    if (pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new RxtrainError(
        'E_USAGE',
        `${runDir}: in use by rxtrain process ${pid} (if no rxtrain runs there, delete ${path})`,
      );
    }
    rmSync(path, { force: true });
  }
}

function lockHolder(path: string): number {
  try {
    return Number.parseInt(readFileSync(path, 'utf8'), 10) || 0;
  } catch {
    return 0;
  }
}

export /** The event bus and log; a resumed run's log is cut where its checkpoint was taken. */
function openEventLog(
  runDir: string,
  clock: Clock,
  resume: ResumePoint | undefined,
): { events: EventBus; log: NdjsonLog & { path: string }; eventsCut: number } {
  const path = join(runDir, RUN_FILES.events);
  let offset = 0;
  let eventsCut = 0;
  if (resume && existsSync(path)) {
    const size = statSync(path).size;
    offset = Math.min(resume.checkpoint?.meta.eventsOffset ?? 0, size);
    eventsCut = size - offset;
    truncateSync(path, offset);
  }
  const log = Object.assign(new NdjsonLog(path, offset), { path });
  return { events: new EventBus(clock, resume?.checkpoint?.meta.eventsSeq ?? 0), log, eventsCut };
}
