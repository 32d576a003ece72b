/**
 * Running an experiment: create the run directory, wire the event log, build the pipeline, drive
 * it to the end as its final consumer (writing checkpoints as their barriers arrive and the final
 * weights at the end), and leave `summary.json`.
 *
 *   runs/<name>-<YYYYMMDD-HHMMSS>/
 *     config.yaml       the resolved config (defaults filled in, overrides applied)
 *     events.ndjson     one JSON event per line
 *     weights.f32       final weights, float32 little-endian, row-major [rows, classes]
 *     model.json        their shape, the feature transform, and their sha256
 *     summary.json      status, steps, epochs, test accuracy and loss, weightsSha256, durationMs
 *     checkpoints/      checkpoint files (see checkpoint.ts)
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { VERSION } from '../version.js';
import { writeFileAtomic } from './atomicFile.js';
import {
  type CheckpointHeader,
  checkpointFileName,
  littleEndianFloats,
  writeCheckpoint,
} from './checkpoint.js';
import { buildPipeline } from './compose.js';
import { type ExperimentConfig, resolvedYaml } from './config.js';
import { describeError, RxtrainError } from './errors.js';
import { type Clock, EventBus, type EventListener, NdjsonLog, systemClock } from './events.js';
import { consume } from './flow.js';
import type { EvalResult, ModelSnapshot } from './messages.js';

export interface RunOptions {
  config: ExperimentConfig;
  /** The run directory; default `<runsDir>/<name>-<timestamp>`. */
  runDir?: string;
  /** Parent of default run directories; default `runs` under the current directory. */
  runsDir?: string;
  /** Where downloads and stage caches live; default `$RXTRAIN_CACHE` or the user's cache dir. */
  cacheDir?: string;
  clock?: Clock;
  /** Abort to stop the run: the updater takes a checkpoint and the run ends as interrupted. */
  signal?: AbortSignal;
  /** Receives every event (a progress renderer). */
  onEvent?: EventListener;
  /** Max ms of CPU-bound work between yields to the event loop. */
  sliceMs?: number;
  /** Resume state (set by `resume`): stage states, where to continue the event log. */
  resume?: {
    states: Record<string, unknown>;
    eventsOffset: number;
    eventsSeq: number;
    fromStep: number;
    checkpoint: string;
  };
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
  durationMs: number;
  /** Time from start until the training data was ready (the data stages finished), ms. */
  dataMs?: number;
  stages: Record<string, { durationMs?: number; items: number }>;
  rxtrainVersion: string;
  error?: { code: string; message: string };
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
  if (!options.resume && existsSync(runDir) && readdirSync(runDir).length > 0) {
    throw new RxtrainError(
      'E_USAGE',
      `${runDir}: run directory exists and is not empty (use rxtrain resume, or another --run-dir)`,
    );
  }
  try {
    mkdirSync(runDir, { recursive: true });
  } catch (error) {
    throw new RxtrainError(
      'E_IO',
      `${runDir}: cannot create run directory (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  if (!options.resume) writeFileAtomic(join(runDir, 'config.yaml'), resolvedYaml(config));
  const hash = configHash(config);

  const events = new EventBus(clock, options.resume?.eventsSeq ?? 0);
  const log = new NdjsonLog(join(runDir, 'events.ndjson'), options.resume?.eventsOffset ?? 0);
  events.on((e) => log.write(e));
  if (options.onEvent) events.on(options.onEvent);

  const stop = new AbortController();
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
  };
  let trainingStarted = !!options.resume;
  events.on((e) => {
    if (e.type === 'train' || (e.type === 'eval' && e.step > 0)) trainingStarted = true;
  });

  events.emit({
    type: 'run-started',
    run: runDir.split(/[\\/]/).pop()!,
    config: config.name,
    runDir,
    version: VERSION,
    ...(options.resume ? { resumedFrom: options.resume.fromStep } : {}),
  });
  if (options.resume) {
    events.emit({
      type: 'warning',
      code: 'W_RESUMED',
      message: `resumed from ${options.resume.checkpoint} at step ${options.resume.fromStep}; events after it were cut`,
    });
  }

  const pipeline = buildPipeline(config, {
    events,
    clock,
    cacheDir: options.cacheDir ?? defaultCacheDir(),
    stopSignal: stop.signal,
    sliceMs: options.sliceMs ?? 25,
    restored: options.resume?.states,
  });
  const timer = setInterval(() => pipeline.sampleProgress(), config.progressIntervalMs);
  timer.unref();

  let finalSnapshot: ModelSnapshot | undefined;
  let lastSnapshot: ModelSnapshot | undefined;
  let interrupted = false;
  const checkpointDir = join(runDir, 'checkpoints');
  const best = { file: undefined as string | undefined, value: Number.NaN };

  const run = consume(pipeline.flow, (message) => {
    if (message.kind !== 'snapshot') return;
    lastSnapshot = message;
    if (message.final) finalSnapshot = message;
    if (message.checkpoint) {
      const barrier = message.checkpoint;
      try {
        const header: CheckpointHeader = {
          format: 1,
          rxtrainVersion: VERSION,
          configHash: hash,
          step: message.step,
          epoch: message.epoch,
          samples: message.samples,
          reason: barrier.reason,
          time: clock.date().toISOString(),
          states: barrier.states,
          eventsOffset: 0,
          eventsSeq: 0,
          rows: message.rows,
          classes: message.classes,
        };
        const file = join(checkpointDir, checkpointFileName(message.step));
        // The event goes first so that a resume, cutting the log at eventsOffset, keeps it.
        events.emit({ type: 'checkpoint', step: message.step, reason: barrier.reason, file });
        header.eventsOffset = log.offset;
        header.eventsSeq = events.seq;
        log.sync();
        const metric = config.checkpoint.keepBest
          ? metricOf(message.results, config.checkpoint.keepBest)
          : undefined;
        const lowerIsBetter = config.checkpoint.keepBest?.endsWith('.loss') ?? false;
        const isBest =
          metric !== undefined &&
          (Number.isNaN(best.value) || (lowerIsBetter ? metric < best.value : metric > best.value));
        const written = writeCheckpoint(
          checkpointDir,
          header,
          message.weights,
          config.checkpoint.keep,
          new Set(
            [isBest ? file : best.file].filter((f): f is string => !!f).map((f) => f.split(/[\\/]/).pop()!),
          ),
        );
        if (isBest) {
          best.file = written.file;
          best.value = metric!;
        }
        barrier.settle();
      } catch (error) {
        barrier.settle(error);
        throw error;
      }
    }
  });
  const onAbort = () => {
    interrupted = true;
    // Before training has started there is nothing to checkpoint: stop at once.
    if (!trainingStarted) run.cancel();
    else stop.abort();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  let failure: unknown;
  try {
    await Promise.race([
      run.done,
      new Promise<void>((resolve) => {
        options.signal?.addEventListener('abort', () => {
          if (!trainingStarted) resolve();
        });
      }),
    ]);
  } catch (error) {
    failure = error;
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  pipeline.sampleProgress();

  const snap = finalSnapshot ?? lastSnapshot;
  if (snap) {
    summary.steps = snap.step;
    summary.epochs = snap.epoch;
    summary.samples = snap.samples;
    for (const r of snap.results) summary.splits[r.split] = { accuracy: r.accuracy, loss: r.loss };
    summary.test = summary.splits['test'];
    summary.val = summary.splits['val'];
  }
  const dataStages = pipeline.stages.filter((s) =>
    ['fetch', 'untar', 'decodeIdx', 'normalise'].includes(s.type),
  );
  if (dataStages.length && dataStages.every((s) => s.durationMs !== undefined)) {
    const lastData = dataStages[dataStages.length - 1]!;
    summary.dataMs = Math.round(lastData.startedAt! + lastData.durationMs! - started);
  }
  for (const s of pipeline.stages) {
    summary.stages[s.id] = {
      durationMs: s.durationMs === undefined ? undefined : Math.round(s.durationMs),
      items: s.items,
    };
  }

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
  } else if (interrupted || !finalSnapshot) {
    summary.status = 'interrupted';
  }
  if (finalSnapshot && !failure) {
    const bytes = littleEndianFloats(finalSnapshot.weights);
    summary.weightsSha256 = createHash('sha256').update(bytes).digest('hex');
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
          rows: finalSnapshot.rows,
          classes: finalSnapshot.classes,
          step: finalSnapshot.step,
          sha256: summary.weightsSha256,
          features: {
            width: finalSnapshot.transform.width,
            bias: finalSnapshot.transform.bias,
            formula: 'x[j] * scale[j] + shift[j]',
            scale: Array.from(finalSnapshot.transform.scale),
            shift: finalSnapshot.transform.shift ? Array.from(finalSnapshot.transform.shift) : null,
          },
        },
        null,
        1,
      ),
    );
  }
  summary.durationMs = Math.round(clock.now() - started);
  const exitCode = summary.status === 'completed' ? 0 : summary.status === 'failed' ? 1 : 130;
  events.emit({
    type: 'run-finished',
    status: summary.status,
    steps: summary.steps,
    durationMs: summary.durationMs,
    exitCode,
  });
  writeFileAtomic(join(runDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  log.close();
  if (failure) throw failure;
  return summary;
}

function metricOf(results: readonly EvalResult[], metric: string): number | undefined {
  const [split, name] = metric.split('.') as [string, 'accuracy' | 'loss'];
  const r = results.find((x) => x.split === split);
  return r ? r[name] : undefined;
}
