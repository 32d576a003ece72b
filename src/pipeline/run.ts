/**
 * Running an experiment: create the run directory, wire the event log, build the pipeline, drive
 * it to the end as its final consumer (writing checkpoints as their barriers arrive and the final
 * weights at the end), and leave `summary.json`.
 *
 *   runs/<name>-<YYYYMMDD-HHMMSS>/
 *     config.yaml       the resolved config (defaults filled in, overrides applied)
 *     run.json          where relative paths in it resolve, its hash, the rxtrain version
 *     events.ndjson     one JSON event per line
 *     weights.f32       final weights, float32 little-endian, row-major [rows, classes]
 *     model.json        their shape, the feature transform, and their sha256
 *     summary.json      status, steps, epochs, test accuracy and loss, weightsSha256, durationMs
 *     checkpoints/      checkpoint files (see checkpoint.ts)
 *
 * A resumed run (resume.ts) continues in the same directory: the event log is cut where the
 * checkpoint was taken, so it stays one history in which no step appears twice.
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
import { consume } from '../flow/index.js';
import {
  type AtomicWriteOptions,
  ioError,
  isAlive,
  removeStaleTemps,
  writeFileAtomic,
} from '../util/atomicFile.js';
import { describeError, RxtrainError } from '../util/errors.js';
import { littleEndianBytes } from '../util/packed.js';
import { VERSION } from '../version.js';
import {
  type Checkpoint,
  type CheckpointMeta,
  checkpointFileName,
  type LoadedCheckpoint,
  writeCheckpoint,
} from './checkpoint.js';
import { buildPipeline, type Pipeline } from './compose.js';
import { type ExperimentConfig, resolvedYaml } from './config.js';
import { type Clock, EventBus, type EventListener, NdjsonLog, systemClock } from './events.js';
import type { EvalResult, ModelSnapshot } from './messages.js';
import { canonical } from './stageCache.js';

/** Where a resumed run continues from (built by resume.ts). */
export interface ResumePoint {
  /** The checkpoint to continue from; absent: start over in the same directory. */
  checkpoint?: LoadedCheckpoint;
  /** Newer checkpoints that failed to verify, already set aside, and why. */
  invalid: { file: string; message: string }[];
}

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
  /**
   * How checkpoint files are written: tests substitute a failing file system (a full disk) or a
   * pause inside the write window. Default: $RXTRAIN_TEST_CHECKPOINT_PAUSE_MS, for tests that
   * kill the CLI mid-write.
   */
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

export async function runExperiment(options: RunOptions): Promise<RunSummary> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const runDir = resolve(options.runDir ?? newRunDir(options.runsDir ?? 'runs', config.name, clock.date()));
  const hash = configHash(config);
  const resume = options.resume;
  prepareRunDir(runDir, config, hash, !!resume);
  const unlock = lockRunDir(runDir);

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
      writeFileAtomic(join(runDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    } catch (error) {
      // On a full disk the outputs may fail too; the first failure is the one to report.
      failure ??= error;
    } finally {
      log.close();
      unlock();
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
  const saveCheckpoint = checkpointSaver(runDir, config, hash, clock, events, log, from?.meta.best ?? null, {
    ...options.checkpointWrite,
    pauseMs: options.checkpointWrite?.pauseMs ?? (Number(process.env.RXTRAIN_TEST_CHECKPOINT_PAUSE_MS) || 0),
  });

  const run = consume(pipeline.flow, (message) => {
    if (message.kind !== 'snapshot') return;
    lastSnapshot = message;
    if (message.final) finalSnapshot = message;
    const barrier = message.checkpoint;
    if (!barrier) return;
    try {
      saveCheckpoint(message, barrier.reason, barrier.states);
      barrier.settle();
    } catch (error) {
      barrier.settle(error);
      throw error;
    }
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

function prepareRunDir(runDir: string, config: ExperimentConfig, hash: string, resuming: boolean): void {
  if (!resuming && existsSync(runDir) && readdirSync(runDir).length > 0) {
    throw new RxtrainError(
      'E_USAGE',
      `${runDir}: run directory exists and is not empty (use rxtrain resume, or another --run-dir)`,
    );
  }
  try {
    mkdirSync(join(runDir, 'checkpoints'), { recursive: true });
  } catch (error) {
    throw new RxtrainError(
      'E_IO',
      `${runDir}: cannot create run directory (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  removeStaleTemps(runDir);
  removeStaleTemps(join(runDir, 'checkpoints'));
  if (resuming) return;
  writeFileAtomic(join(runDir, 'config.yaml'), resolvedYaml(config));
  const record: RunRecord = {
    rxtrainVersion: VERSION,
    configFile: resolve(config.file),
    baseDir: config.baseDir,
    configHash: hash,
  };
  writeFileAtomic(join(runDir, 'run.json'), JSON.stringify(record, null, 2) + '\n');
}

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

/**
 * Take `<runDir>/run.lock` for this process, so that two processes never write one run (a
 * `resume` while the run still goes on). The lock of a process that is gone (killed) is taken over,
 * and so is one of this process (resume.ts takes it before it changes anything). Returns the release.
 */
export function lockRunDir(runDir: string): () => void {
  const path = join(runDir, 'run.lock');
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

/** The event bus and log; a resumed run's log is cut where its checkpoint was taken. */
function openEventLog(
  runDir: string,
  clock: Clock,
  resume: ResumePoint | undefined,
): { events: EventBus; log: NdjsonLog & { path: string }; eventsCut: number } {
  const path = join(runDir, 'events.ndjson');
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

/**
 * Writes each checkpoint barrier: its event first (so a resume, cutting the log at the recorded
 * offset, keeps it), the log made durable, then the file, then old files rotated out.
 */
function checkpointSaver(
  runDir: string,
  config: ExperimentConfig,
  hash: string,
  clock: Clock,
  events: EventBus,
  log: NdjsonLog,
  initialBest: CheckpointMeta['best'],
  write: AtomicWriteOptions,
): (snap: ModelSnapshot, reason: string, states: Record<string, unknown>) => void {
  const dir = join(runDir, 'checkpoints');
  const policy = config.checkpoint;
  let best = initialBest;
  return (snap, reason, states) => {
    const name = checkpointFileName(snap.step);
    const value = policy.keepBest ? metricOf(snap.results, policy.keepBest) : undefined;
    const lowerIsBetter = policy.keepBest?.endsWith('.loss') ?? false;
    if (
      policy.keepBest &&
      value !== undefined &&
      Number.isFinite(value) &&
      (best === null || (lowerIsBetter ? value < best.value : value > best.value))
    ) {
      best = { metric: policy.keepBest, value, file: name };
    }
    events.emit({ type: 'checkpoint', step: snap.step, reason, file: join(dir, name) });
    log.sync();
    const checkpoint: Checkpoint = {
      meta: {
        format: 2,
        rxtrainVersion: VERSION,
        configHash: hash,
        step: snap.step,
        epoch: snap.epoch,
        samples: snap.samples,
        reason,
        final: snap.final,
        time: clock.date().toISOString(),
        eventsOffset: log.offset,
        eventsSeq: events.seq,
        best,
      },
      model: {
        weights: snap.weights,
        rows: snap.rows,
        classes: snap.classes,
        transform: snap.transform,
        results: snap.results,
      },
      states,
    };
    writeCheckpoint(dir, checkpoint, {
      ...write,
      keep: policy.keep,
      protect: new Set(best ? [best.file] : []),
    });
  };
}

/** Write weights.f32 and model.json; returns the weights' sha256. */
function writeModel(runDir: string, snap: SnapshotLike): string {
  const bytes = littleEndianBytes(snap.weights);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  writeFileAtomic(join(runDir, 'weights.f32'), bytes);
  writeFileAtomic(
    join(runDir, 'model.json'),
    JSON.stringify(
      {
        format: 'rxtrain-softmax-regression/1',
        weights: 'weights.f32',
        dtype: 'float32',
        byteOrder: 'little-endian',
        layout: 'row-major [rows, classes]; the last row is the bias when bias is true',
        rows: snap.rows,
        classes: snap.classes,
        step: snap.step,
        sha256,
        features: {
          width: snap.transform.width,
          bias: snap.transform.bias,
          formula: 'x[j] * scale[j] + shift[j]',
          scale: Array.from(snap.transform.scale),
          shift: snap.transform.shift ? Array.from(snap.transform.shift) : null,
        },
      },
      null,
      1,
    ),
  );
  return sha256;
}

function metricOf(results: readonly EvalResult[], metric: string): number | undefined {
  const [split, name] = metric.split('.') as [string, 'accuracy' | 'loss'];
  const r = results.find((x) => x.split === split);
  return r ? r[name] : undefined;
}
