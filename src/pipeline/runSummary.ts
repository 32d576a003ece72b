/**
 * What a run records about itself in its directory: the events that open it (`run-started`, what a
 * resume found, settings that would not survive a resume), and at the end the outputs —
 * `weights.f32` and `model.json` from the final model, the `error` and `run-finished` events, and
 * `summary.json`.
 */
import { join } from 'node:path';
import { encodeModel } from '../kernels/modelFile.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { describeError, RxtrainError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import type { ExperimentConfig } from './config.js';
import { roundTripProblems } from './configCache.js';
import { type Clock, EVENTS_VERSION, type EventBus, type RxtrainEvent } from './events.js';
import type { ModelSnapshot, TrainingEnd } from './messages.js';
import { type ResumePoint, RUN_FILES } from './runDir.js';

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
  /** The last evaluation of every evaluated split (of an interrupted run too), with its step. */
  splits: Record<string, SplitScore & { step: number }>;
  /** The evaluator's best evaluation by its own metric (and `minDelta`), when it has one. */
  best?: { metric: string; step: number; value: number };
  /**
   * Why the run ended: every pass done (`epochs`), the step cap (`steps`), early stopping
   * (`early-stop`, with the evaluator's reason), the samples ran out (`input`), a signal
   * (`signal`, with its name), or an error (`error`, with its line).
   */
  stop?: { reason: TrainingEnd | 'signal' | 'error'; detail?: string };
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

/** What the outputs are made from: a final snapshot, or a checkpoint of one. */
export type SnapshotLike = Pick<
  ModelSnapshot,
  'step' | 'epoch' | 'samples' | 'weights' | 'architecture' | 'classes' | 'transform' | 'results' | 'final'
> &
  Partial<Pick<ModelSnapshot, 'endedBy' | 'stopReason' | 'shape' | 'classNames'>>;

export interface RunRecorderOptions {
  config: ExperimentConfig;
  runDir: string;
  events: EventBus;
  clock: Clock;
  resume: ResumePoint | undefined;
  /** Bytes cut from the event log by the resume. */
  eventsCut: number;
  /** The events the log kept from earlier attempts (a resumed run's evaluations so far). */
  earlier?: readonly RxtrainEvent[];
  /** The signal that stops the run: SIGTERM's exit code is 143, any other 130. */
  signal?: AbortSignal;
}

/** The run's summary, filled in as the run goes, and the events and files that open and close it. */
export class RunRecorder {
  readonly summary: RunSummary;
  private readonly started: number;

  constructor(private readonly o: RunRecorderOptions) {
    const { config, runDir, resume, events } = o;
    this.started = o.clock.now();
    const resumedFrom = resume ? { resumedFrom: resume.checkpoint?.meta.step ?? 0 } : {};
    this.summary = {
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
      ...resumedFrom,
    };
    for (const e of o.earlier ?? []) this.observe(e);
    events.on((e) => this.observe(e));
    events.emit({
      type: 'run-started',
      run: runDir.split(/[\\/]/).pop()!,
      config: config.name,
      runDir,
      version: VERSION,
      eventsVersion: EVENTS_VERSION,
      ...resumedFrom,
    });
    if (resume) announceResume(events, resume, o.eventsCut);
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
  }

  /**
   * Progress as it is reported: training (so a run that fails before any snapshot still says how
   * far it got), the last evaluation of each split, the evaluator's best.
   */
  private observe(e: RxtrainEvent): void {
    if (e.type === 'train') {
      this.summary.steps = e.step;
      this.summary.epochs = e.epoch;
      this.summary.samples = e.samples;
      return;
    }
    if (e.type !== 'eval') return;
    this.summary.splits[e.split] = { accuracy: e.accuracy, loss: e.loss, step: e.step };
    if (e.best) this.summary.best = { ...e.best };
  }

  /** Clock ms since the run started. */
  since(time: number): number {
    return Math.round(time - this.started);
  }

  /**
   * Close the run: its status from the last model and how it ended, the model files when it
   * finished, the `run-finished` event and summary.json. Throws the first failure.
   */
  finish(snap: SnapshotLike | undefined, failure: unknown, interrupted: boolean): RunSummary {
    const { summary, o } = this;
    if (snap) {
      summary.steps = snap.step;
      summary.epochs = snap.epoch;
      summary.samples = snap.samples;
      for (const r of snap.results) {
        summary.splits[r.split] = { accuracy: r.accuracy, loss: r.loss, step: r.step };
      }
    }
    const score = (split: string) => {
      const r = summary.splits[split];
      return r && { accuracy: r.accuracy, loss: r.loss };
    };
    summary.test = score('test');
    summary.val = score('val');
    if (snap?.final && snap.endedBy) {
      summary.stop = { reason: snap.endedBy, ...(snap.stopReason ? { detail: snap.stopReason } : {}) };
    }
    if (failure) {
      summary.status = 'failed';
      const code = failure instanceof RxtrainError ? failure.code : 'E_INTERNAL';
      summary.error = { code, message: describeError(failure) };
      summary.stop = { reason: 'error', detail: `${code}: ${describeError(failure)}` };
      o.events.emit({
        type: 'error',
        code,
        message: describeError(failure),
        ...(failure instanceof RxtrainError ? failure.toJSON() : {}),
      });
    } else if (interrupted || !snap?.final) {
      summary.status = 'interrupted';
      summary.stop = { reason: 'signal', detail: signalName(o.signal) };
    }
    try {
      if (snap?.final && !failure) summary.weightsSha256 = writeModel(o.runDir, snap);
      summary.durationMs = this.since(o.clock.now());
      const interruptedCode = interruptedExitCode(o.signal);
      o.events.emit({
        type: 'run-finished',
        status: summary.status,
        steps: summary.steps,
        durationMs: summary.durationMs,
        exitCode: summary.status === 'completed' ? 0 : summary.status === 'failed' ? 1 : interruptedCode,
      });
      writeFileAtomic(join(o.runDir, RUN_FILES.summary), JSON.stringify(summary, null, 2) + '\n');
    } catch (error) {
      // On a full disk the outputs may fail too; the first failure is the one to report.
      failure ??= error;
    }
    if (failure) throw failure;
    return summary;
  }
}

/** The name of the signal that stopped a run (an abort reason that is not one: `SIGINT`). */
function signalName(signal: AbortSignal | undefined): string {
  const reason = signal?.reason;
  return typeof reason === 'string' && reason.startsWith('SIG') ? reason : 'SIGINT';
}

/** 128 + the signal's number, as a shell reports a process killed by it: SIGHUP 129, SIGINT 130, SIGTERM 143. */
export function interruptedExitCode(signal: AbortSignal | undefined): number {
  const codes: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
  return codes[signalName(signal)] ?? 130;
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
  const files = encodeModel(snap);
  writeFileAtomic(join(runDir, RUN_FILES.weights), files.weights);
  writeFileAtomic(join(runDir, RUN_FILES.model), files.json);
  return files.sha256;
}
