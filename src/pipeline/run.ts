/**
 * Running an experiment: take the run directory (runDir.ts), build the pipeline (compose.ts),
 * drive it to the end as its sink — writing each checkpoint barrier that arrives (checkpoints.ts)
 * and the final model — and leave `summary.json`.
 */
import { join, resolve } from 'node:path';
import { consume } from '../flow/index.js';
import { encodeSoftmaxModel } from '../kernels/softmaxModelFile.js';
import { type AtomicWriteOptions, writeFileAtomic } from '../util/atomicFile.js';
import { describeError, RxtrainError } from '../util/errors.js';
import type { FileLock } from '../util/fileLock.js';
import { VERSION } from '../util/version.js';
import { CheckpointWriter } from './checkpoints.js';
import { buildPipeline, type Pipeline } from './compose.js';
import type { ExperimentConfig } from './config.js';
import { type Clock, type EventBus, type EventListener, systemClock } from './events.js';
import type { ModelSnapshot } from './messages.js';
import {
  configHash,
  createRunDir,
  defaultCacheDir,
  lockRunDir,
  openEventLog,
  prepareRunDir,
  type ResumePoint,
  RUN_FILES,
} from './runDir.js';
import { canonical } from './stageCache.js';

export { configHash, defaultCacheDir, type ResumePoint, type RunRecord } from './runDir.js';

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
  /** How checkpoint files are written: tests substitute a failing file system (a full disk). */
  checkpointWrite?: AtomicWriteOptions;
}

export interface SplitScore {
  accuracy: number;
  loss: number;
}

export interface RunSummary {
  status: 'completed' | 'failed' | 'interrupted';
  name: string;
  runDir: string;
  seed: number;
  steps: number;
  /** Completed passes over the training data (fractional). */
  epochs: number;
  samples: number;
  test?: SplitScore;
  val?: SplitScore;
  /** Scores of every evaluated split at the end. */
  splits: Record<string, SplitScore>;
  /** sha256 of weights.f32. */
  weightsSha256?: string;
  /** This attempt's duration (a resumed run counts from the resume), ms. */
  durationMs: number;
  /** Time from start until the data stages' output was complete (computed or replayed), ms. */
  dataMs?: number;
  /** What the data-stage cache did: hit (replayed), miss (computed and stored), bypass. */
  dataCache?: 'hit' | 'miss' | 'bypass';
  /** The step this attempt resumed from, when it was resumed. */
  resumedFrom?: number;
  stages: Record<string, { durationMs?: number; items: number }>;
  rxtrainVersion: string;
  error?: { code: string; message: string };
}

export async function runExperiment(options: RunOptions): Promise<RunSummary> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const runDir = resolve(
    options.runDir ?? createRunDir(options.runsDir ?? 'runs', config.name, clock.date()),
  );
  const hash = configHash(config);
  const resume = options.resume;
  // The lock first: nothing is written into the directory before it is held.
  const lock = options.lock ?? lockRunDir(runDir);
  try {
    prepareRunDir(runDir, config, hash, !!resume);
  } catch (error) {
    lock.release();
    throw error;
  }

  const { events, log, eventsCut } = openEventLog(runDir, clock, resume);
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

  const summary: RunSummary = {
    status: 'completed',
    name: config.name,
    runDir,
    seed: config.seed,
    steps: 0,
    epochs: 0,
    samples: 0,
    splits: {},
    durationMs: 0,
    stages: {},
    rxtrainVersion: VERSION,
    ...(resume ? { resumedFrom: resume.checkpoint?.meta.step ?? 0 } : {}),
  };
  events.emit({
    type: 'run-started',
    run: runDir.split(/[\\/]/).pop()!,
    config: config.name,
    runDir,
    version: VERSION,
    ...(resume ? { resumedFrom: resume.checkpoint?.meta.step ?? 0 } : {}),
  });
  if (resume) announceResume(events, resume, eventsCut);
  else {
    for (const problem of roundTripProblems(config)) {
      events.emit({
        type: 'warning',
        stage: problem.stage,
        code: 'W_NOT_RESUMABLE',
        message: problem.message,
      });
    }
  }

  const finish = (snap: SnapshotLike | undefined, failure: unknown, interrupted: boolean): RunSummary => {
    if (snap) {
      summary.steps = snap.step;
      summary.epochs = snap.epoch;
      summary.samples = snap.samples;
      for (const r of snap.results) summary.splits[r.split] = { accuracy: r.accuracy, loss: r.loss };
      summary.test = summary.splits['test'];
      summary.val = summary.splits['val'];
    }
    failure ??= logFailure;
    if (failure) {
      summary.status = 'failed';
      const code = failure instanceof RxtrainError ? failure.code : 'E_INTERNAL';
      summary.error = { code, message: describeError(failure) };
      events.emit({
        type: 'error',
        code,
        message: describeError(failure),
        ...(failure instanceof RxtrainError ? failure.toJSON() : {}),
      });
    } else if (interrupted || !snap?.final) {
      summary.status = 'interrupted';
    }
    try {
      if (snap?.final && !failure) summary.weightsSha256 = writeModel(runDir, snap);
      summary.durationMs = Math.round(clock.now() - started);
      const interruptedCode = options.signal?.reason === 'SIGTERM' ? 143 : 130;
      events.emit({
        type: 'run-finished',
        status: summary.status,
        steps: summary.steps,
        durationMs: summary.durationMs,
        exitCode: summary.status === 'completed' ? 0 : summary.status === 'failed' ? 1 : interruptedCode,
      });
      writeFileAtomic(join(runDir, RUN_FILES.summary), JSON.stringify(summary, null, 2) + '\n');
    } catch (error) {
      // On a full disk the outputs may fail too; the first failure is the one to report.
      failure ??= error;
    } finally {
      log.close();
      lock.release();
    }
    if (failure) throw failure;
    return summary;
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
  events.on((e) => {
    if (e.type === 'cache' && e.action !== 'write') summary.dataCache = e.action;
  });
  const timer = setInterval(() => pipeline.sampleProgress(), config.progressIntervalMs);
  timer.unref();

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
  // Training has begun once a stage reports a step (the updater, the evaluator after step 0).
  const training = () =>
    lastSnapshot !== undefined || pipeline.stages.some((h) => Number(h.counters['step']) > 0);
  const onAbort = () => {
    interrupted = true;
    // Loading data, or told not to checkpoint on a signal: there is nothing to save; stop at once.
    if (!config.checkpoint.onSignal || !training()) cancelled();
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

  if (pipeline.dataReadyAt !== undefined) summary.dataMs = Math.round(pipeline.dataReadyAt - started);
  for (const s of pipeline.stages) {
    summary.stages[s.id] = {
      durationMs: s.durationMs === undefined ? undefined : Math.round(s.durationMs),
      items: s.items,
    };
  }
  // A signal that came after the last step does not make a finished run interrupted.
  const snap = finalSnapshot ?? lastSnapshot;
  return finish(snap, failure, interrupted && !finalSnapshot);
}

/** What the outputs are made from: a final snapshot, or a checkpoint of one. */
type SnapshotLike = Pick<
  ModelSnapshot,
  'step' | 'epoch' | 'samples' | 'weights' | 'rows' | 'classes' | 'transform' | 'results' | 'final'
>;

/**
 * Stages whose resolved settings (as config.yaml records them) do not validate to the same
 * settings again: `rxtrain resume` could not load that config, or would run another experiment.
 */
function roundTripProblems(config: ExperimentConfig): { stage: string; message: string }[] {
  const problems: { stage: string; message: string }[] = [];
  for (const s of config.stages) {
    const again = s.definition.settings.safeParse(s.settings);
    if (!again.success || JSON.stringify(canonical(again.data)) !== JSON.stringify(canonical(s.settings))) {
      problems.push({
        stage: s.id,
        message: `${s.id}: its resolved settings do not validate to themselves again, so this run cannot be resumed (a bug in the ${s.type} stage's schema)`,
      });
    }
  }
  return problems;
}

function announceResume(events: EventBus, resume: ResumePoint, eventsCut: number): void {
  const cp = resume.checkpoint;
  events.emit({
    type: 'resumed',
    step: cp?.meta.step ?? 0,
    checkpoint: cp?.file ?? null,
    eventsCut,
    invalid: resume.invalid.map((i) => i.file),
  });
  for (const bad of resume.invalid) {
    events.emit({
      type: 'warning',
      code: 'W_CHECKPOINT_INVALID',
      message: `${bad.message}; set aside as ${bad.file}.invalid, ${cp ? `using ${cp.file}` : 'no valid checkpoint left'}`,
    });
  }
  if (!cp) {
    events.emit({
      type: 'warning',
      code: 'W_RESUME_FROM_START',
      message: 'no valid checkpoint: the run starts again from the beginning in the same directory',
    });
  } else if (cp.meta.rxtrainVersion !== VERSION) {
    events.emit({
      type: 'warning',
      code: 'W_RESUME_VERSION',
      message: `${cp.file} was written by rxtrain ${cp.meta.rxtrainVersion}, this is ${VERSION}; results may differ from an uninterrupted run`,
    });
  }
}

/** Write weights.f32 and model.json; returns the weights' sha256. */
function writeModel(runDir: string, snap: SnapshotLike): string {
  const files = encodeSoftmaxModel(snap);
  writeFileAtomic(join(runDir, RUN_FILES.weights), files.weights);
  writeFileAtomic(join(runDir, RUN_FILES.model), files.json);
  return files.sha256;
}
