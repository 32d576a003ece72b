/**
 * Running an experiment: take the run directory (runDir.ts), build the pipeline (compose.ts),
 * drive it to the end as its sink — writing each checkpoint barrier that arrives (checkpoints.ts)
 * and the final model — and leave `summary.json`.
 */
import { join, resolve } from 'node:path';
import { consume } from '../flow/index.js';
import type { AtomicWriteOptions } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import type { FileLock } from '../util/fileLock.js';
import type { RunDependencies } from './checkpointFile.js';
import { CheckpointWriter } from './checkpoints.js';
import { buildPipeline, type Pipeline } from './compose.js';
import type { ExperimentConfig } from './config.js';
import { type Clock, type EventListener, systemClock } from './events.js';
import type { ModelSnapshot } from './messages.js';
import {
  configHash,
  createRunDir,
  defaultCacheDir,
  lockRunDir,
  moduleDigests,
  openEventLog,
  prepareRunDir,
  type ResumePoint,
} from './runDir.js';
import { RunRecorder, type RunSummary, type SnapshotLike } from './runSummary.js';

export { configHash, defaultCacheDir, type ResumePoint, type RunRecord } from './runDir.js';
export type { RunSummary, SplitScore } from './runSummary.js';

export interface RunOptions {
  config: ExperimentConfig;
  /** The run directory; default `<runsDir>/<name>-<timestamp>`. */
  runDir?: string;
  /** Parent of default run directories; default `runs` under the current directory. */
  runsDir?: string;
  /** Where downloads and stage caches live; default `$RXTRAIN_CACHE` or the user's cache dir. */
  cacheDir?: string;
  /** Cache the data stages' output and replay it when it matches (default true). */
  stageCache?: boolean;
  clock?: Clock;
  /** Abort to stop the run: the updater takes a checkpoint and the run ends as interrupted. */
  signal?: AbortSignal;
  /** Receives every event (a progress renderer). */
  onEvent?: EventListener;
  /** Max ms of CPU-bound work between yields to the event loop. */
  sliceMs?: number;
  /** Continue an earlier run in `runDir` (set by resumeExperiment). */
  resume?: ResumePoint;
  /** The run directory's lock, when the caller already holds it (resume); released at the end. */
  lock?: FileLock;
  /** Resume although the data or the stage modules changed since the checkpoint. */
  allowChangedData?: boolean;
  /** Empty a run directory that is not (`--force`); without it such a directory is an error. */
  replace?: boolean;
  /** How checkpoint files are written: tests substitute a failing file system (a full disk). */
  checkpointWrite?: AtomicWriteOptions;
}

export async function runExperiment(options: RunOptions): Promise<RunSummary> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const runDir = resolve(
    options.runDir ?? createRunDir(options.runsDir ?? 'runs', config.name, clock.date()),
  );
  const hash = configHash(config);
  const resume = options.resume;
  // The lock first: nothing is written into the directory before it is held.
  const lock = options.lock ?? lockRunDir(runDir);
  try {
    prepareRunDir(runDir, config, hash, resume ? 'resume' : options.replace ? 'replace' : 'new');
  } catch (error) {
    lock.release();
    throw error;
  }

  const { events, log, eventsCut, earlier } = openEventLog(runDir, clock, resume);
  let logFailure: RxtrainError | undefined;
  let stopForLog: (() => void) | undefined;
  events.on((e) => {
    if (logFailure) return;
    try {
      log.write(e);
    } catch (error) {
      // A log that cannot be written cannot be resumed from: stop the run.
      logFailure = new RxtrainError(
        'E_IO',
        `${log.path}: cannot write (${(error as NodeJS.ErrnoException).code})`,
      );
      stopForLog?.();
    }
  });
  if (options.onEvent) events.on(options.onEvent);

  const recorder = new RunRecorder({
    config,
    runDir,
    events,
    clock,
    resume,
    eventsCut,
    earlier,
    signal: options.signal,
  });
  const summary = recorder.summary;
  const finish = (snap: SnapshotLike | undefined, failure: unknown, interrupted: boolean): RunSummary => {
    try {
      return recorder.finish(snap, failure ?? logFailure, interrupted);
    } finally {
      log.close();
      lock.release();
    }
  };

  // A checkpoint of the finished model: only the outputs are missing.
  const from = resume?.checkpoint;
  if (from?.meta.final) return finish({ ...from.meta, ...from.model, final: true }, undefined, false);

  const stop = new AbortController();
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  let pipeline: Pipeline;
  try {
    pipeline = buildPipeline(config, {
      events,
      clock,
      cacheDir,
      stopSignal: stop.signal,
      sliceMs: options.sliceMs ?? 25,
      restored: from?.states,
      stageCacheDir: options.stageCache === false ? undefined : join(cacheDir, 'stages'),
    });
  } catch (error) {
    return finish(undefined, error, false);
  }
  const timer = setInterval(() => pipeline.sampleProgress(), config.progressIntervalMs);
  timer.unref();

  const depends: RunDependencies = { modules: moduleDigests(config) };
  let finalSnapshot: ModelSnapshot | undefined;
  let lastSnapshot: ModelSnapshot | undefined;
  const writer = new CheckpointWriter({
    runDir,
    policy: config.checkpoint,
    configHash: hash,
    clock,
    events,
    log,
    best: from?.meta.best ?? null,
    write: options.checkpointWrite,
    depends: () => depends,
  });

  // The sink: checkpoint barriers are written as they arrive; the final model is checkpointed
  // here too, once the evaluators have seen it.
  const run = consume(pipeline.flow, (message) => {
    if (message.kind === 'checkpoint') {
      lastSnapshot = message.model;
      writer.save(message);
      return;
    }
    if (message.kind !== 'snapshot') return;
    lastSnapshot = message;
    if (!message.final) return;
    finalSnapshot = message;
    const barrier = pipeline.checkpoints.atEnd(message);
    if (barrier) writer.save(barrier);
  });

  let interrupted = false;
  let cancelled!: () => void;
  const cancel = new Promise<void>((resolve) => {
    cancelled = () => {
      run.cancel();
      resolve();
    };
  });
  stopForLog = cancelled;
  // What the results depend on besides the config; a resume refuses a change (resume.ts checks
  // the modules before it starts, the data here, as soon as the source's digest is known).
  const recorded = from?.meta.depends?.data;
  let dependencyFailure: RxtrainError | undefined;
  events.on((e) => {
    if (e.type !== 'cache') return;
    if (e.action !== 'write') summary.dataCache = e.action;
    // A first run into an empty cache learns the key only when the data has passed, and says it
    // with `write` (stageCache.ts), before training begins and so before any checkpoint.
    if (!e.key) return;
    depends.data = e.key;
    if (recorded && recorded !== e.key && !options.allowChangedData && !dependencyFailure) {
      dependencyFailure = new RxtrainError(
        'E_RESUME',
        `the data changed since ${from!.file} was taken (data digest ${recorded.slice(0, 12)}, now ${e.key.slice(0, 12)}): resuming would train on other data; restore it, or pass --allow-changed-data`,
      );
      cancelled();
    }
  });
  const onAbort = () => {
    interrupted = true;
    // Loading data, or told not to checkpoint on a signal: there is nothing to save; stop at once.
    if (!config.checkpoint.onSignal || !pipeline.trainingBegun) cancelled();
    else stop.abort();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  let failure: unknown;
  try {
    await Promise.race([run.done, cancel]);
  } catch (error) {
    failure = error;
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  pipeline.sampleProgress();

  if (pipeline.dataReadyAt !== undefined) summary.dataMs = recorder.since(pipeline.dataReadyAt);
  for (const s of pipeline.stages) {
    summary.stages[s.id] = {
      durationMs: s.durationMs === undefined ? undefined : Math.round(s.durationMs),
      items: s.items,
    };
  }
  // A signal that came after the last step does not make a finished run interrupted.
  const snap = finalSnapshot ?? lastSnapshot;
  return finish(snap, failure ?? dependencyFailure, interrupted && !finalSnapshot);
}
