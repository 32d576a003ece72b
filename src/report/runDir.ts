/**
 * Reading what a run left in its directory (see src/pipeline/run.ts for the layout): the event log
 * for the curves and evaluations, summary.json, the resolved config, and the final weights. Only
 * events.ndjson is required, so the report also shows a run that is still going or was killed;
 * everything else that is missing becomes a note in the report rather than an error.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { decodeModel, type ModelDescription, type TrainedModel } from '../kernels/modelFile.js';
import { parseEvents, type RxtrainEvent } from '../pipeline/events.js';
import type { RunSummary } from '../pipeline/run.js';
import { RxtrainError } from '../util/errors.js';

/** One `train` event: the mean loss and accuracy of the samples since the previous one. */
export interface TrainPoint {
  step: number;
  epoch: number;
  loss: number;
  accuracy: number;
}

/** One `eval` event, without the envelope. */
export type EvalPoint = Omit<Extract<RxtrainEvent, { type: 'eval' }>, 'type' | 'time' | 'elapsedMs' | 'seq'>;

/** The final model, as model.json describes weights.f32. */
export type RunModel = TrainedModel;

export interface RunData {
  dir: string;
  /** Identifies the run in the page's anchors and element ids (its position in a report). */
  key: string;
  /** The directory's name. */
  dirName: string;
  /** The run's name in the page: the settings in which it differs from the others (compare.ts). */
  label: string;
  /** The experiment's name (from the events or the summary). */
  name: string;
  /** `completed`, `failed`, `interrupted`, or `running` when the log has not said it finished. */
  status: string;
  summary?: RunSummary;
  configFile?: string;
  configText?: string;
  train: TrainPoint[];
  evals: EvalPoint[];
  model?: RunModel;
  /** What is missing or odd, said in the report. */
  notes: string[];
}

/** What the event log says, gathered one event at a time (a live view feeds it as the log grows). */
export interface RunLog {
  name?: string;
  /** Events that were not what their type says (planted, or from another tool), left out. */
  rejected?: number;
  train: TrainPoint[];
  evals: EvalPoint[];
  /** The status of the run-finished event, once there is one. */
  finished?: string;
}

export function emptyLog(): RunLog {
  return { train: [], evals: [] };
}

/** Add one event to what the log says; true when the report shows something new. */
export function absorbEvent(log: RunLog, e: RxtrainEvent): boolean {
  if (e.type === 'run-started') {
    if (typeof e.config === 'string') log.name ??= e.config;
    // A resumed run's log goes on after its last checkpoint: it has not finished any more.
    log.finished = undefined;
    return true;
  }
  if (e.type === 'run-finished') {
    log.finished = typeof e.status === 'string' ? e.status : 'failed';
    return true;
  }
  if (e.type === 'train') {
    if (!finite(e.step, e.loss, e.epoch, e.accuracy)) return rejected(log);
    log.train.push({ step: e.step, epoch: e.epoch, loss: e.loss, accuracy: e.accuracy });
    return true;
  }
  if (e.type === 'eval') {
    if (!plausibleEval(e)) return rejected(log);
    const { type: _t, time: _time, elapsedMs: _e, seq: _s, ...point } = e;
    log.evals.push(point);
    return true;
  }
  return false;
}

function rejected(log: RunLog): false {
  log.rejected = (log.rejected ?? 0) + 1;
  return false;
}

/** The most classes an evaluation may claim: its confusion matrix is drawn classes² cells. */
export const MAX_REPORT_CLASSES = 4096;

/**
 * An eval event whose numbers are numbers and whose sizes are bounded: the report draws what it
 * says, and a run directory is data from outside (a planted `<meta>` in `label`, 200,000 classes).
 */
function plausibleEval(e: Extract<RxtrainEvent, { type: 'eval' }>): boolean {
  if (typeof e.split !== 'string' || !finite(e.step, e.accuracy, e.loss, e.epoch, e.examples)) return false;
  const C = e.classes;
  if (C !== undefined && !(Number.isInteger(C) && C >= 1 && C <= MAX_REPORT_CLASSES)) return false;
  if (e.confusion !== undefined) {
    if (C === undefined || !Array.isArray(e.confusion) || e.confusion.length !== C * C) return false;
    if (!e.confusion.every((n) => Number.isInteger(n) && n >= 0)) return false;
  }
  for (const list of [e.precision, e.recall, e.f1]) {
    if (list !== undefined && (!Array.isArray(list) || list.length !== C || !list.every((x) => finite(x))))
      return false;
  }
  if (e.misclassified !== undefined) {
    if (!Array.isArray(e.misclassified) || e.misclassified.length > 1000) return false;
    const whole = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
    if (!e.misclassified.every((m) => m && whole(m.index) && whole(m.label) && whole(m.predicted)))
      return false;
  }
  if (
    e.classNames !== undefined &&
    !(Array.isArray(e.classNames) && e.classNames.every((n) => typeof n === 'string'))
  )
    return false;
  return true;
}

export function readRunDir(dir: string, key = '0'): RunData {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory())
    throw new RxtrainError('E_USAGE', `${dir}: no such run directory`);
  const eventsFile = join(abs, 'events.ndjson');
  if (!existsSync(eventsFile))
    throw new RxtrainError('E_USAGE', `${dir}: not a run directory (no events.ndjson; see rxtrain run)`);
  const log = emptyLog();
  for (const e of parseEvents(readText(eventsFile))) absorbEvent(log, e);
  return runData(abs, key, log);
}

/** A run's data from what its log says and the other files of its directory, read now. */
export function runData(abs: string, key: string, log: RunLog): RunData {
  const notes: string[] = [];
  if (log.rejected)
    notes.push(
      `${log.rejected} event${log.rejected > 1 ? 's' : ''} in events.ndjson did not fit the event format and were left out`,
    );
  const summaryFile = join(abs, 'summary.json');
  let summary: RunSummary | undefined;
  if (existsSync(summaryFile)) summary = parseJson<RunSummary>(summaryFile);
  else if (!log.finished)
    notes.push('no summary.json: the run is still going, or was killed before it could write one');

  const configFile = join(abs, 'config.yaml');
  const configText = existsSync(configFile) ? readText(configFile) : undefined;
  if (configText === undefined) notes.push('no config.yaml in the run directory');

  const model = readModel(abs, notes, !log.finished && !summary);
  return {
    dir: abs,
    key,
    dirName: basename(abs),
    label: basename(abs),
    name: log.name ?? summary?.name ?? basename(abs),
    status: summary?.status ?? log.finished ?? 'running',
    summary,
    configFile: configText === undefined ? undefined : configFile,
    configText,
    train: log.train,
    evals: log.evals,
    model,
    notes,
  };
}

/** model.json + weights.f32, checked against each other; absent when the run has no final weights. */
function readModel(dir: string, notes: string[], running: boolean): RunModel | undefined {
  const modelFile = join(dir, 'model.json');
  if (!existsSync(modelFile)) {
    notes.push(
      running
        ? 'no model.json yet: the final weights are drawn when the run has finished'
        : 'no model.json: the run did not finish, so there are no final weights to draw',
    );
    return undefined;
  }
  const meta = parseJson<ModelDescription>(modelFile);
  const weightsFile = join(dir, basename(meta.weights ?? 'weights.f32'));
  let bytes: Buffer;
  try {
    bytes = readFileSync(weightsFile);
  } catch (error) {
    throw new RxtrainError('E_IO', `${weightsFile}: cannot read (${(error as NodeJS.ErrnoException).code})`);
  }
  return decodeModel(meta, bytes, { model: modelFile, weights: weightsFile });
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new RxtrainError('E_IO', `${file}: cannot read (${(error as NodeJS.ErrnoException).code})`);
  }
}

function parseJson<T>(file: string): T {
  const text = readText(file);
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new RxtrainError('E_DATA', `${file}: not valid JSON (${(error as Error).message})`);
  }
}

function finite(...values: unknown[]): boolean {
  return values.every((v) => typeof v === 'number' && Number.isFinite(v));
}

/** The last evaluation of each split, in the order the splits were first evaluated. */
export function finalEvals(run: RunData): EvalPoint[] {
  const last = new Map<string, EvalPoint>();
  for (const e of run.evals) last.set(e.split, e);
  return [...last.values()];
}
