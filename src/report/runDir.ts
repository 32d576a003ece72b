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
  /** The directory's name, made unique among the runs of one report. */
  label: string;
  /** The experiment's name (from the events or the summary). */
  name: string;
  /** `completed`, `failed`, `interrupted`, or `running` when there is no summary yet. */
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

export function readRunDir(dir: string): RunData {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory())
    throw new RxtrainError('E_USAGE', `${dir}: no such run directory`);
  const eventsFile = join(abs, 'events.ndjson');
  if (!existsSync(eventsFile))
    throw new RxtrainError('E_USAGE', `${dir}: not a run directory (no events.ndjson; see rxtrain run)`);

  const notes: string[] = [];
  const events = parseEvents(readText(eventsFile));
  const train: TrainPoint[] = [];
  const evals: EvalPoint[] = [];
  let name: string | undefined;
  for (const e of events) {
    if (e.type === 'run-started' && typeof e.config === 'string') name ??= e.config;
    else if (e.type === 'train' && finite(e.step, e.loss)) {
      train.push({ step: e.step, epoch: e.epoch, loss: e.loss, accuracy: e.accuracy });
    } else if (e.type === 'eval' && typeof e.split === 'string' && finite(e.step, e.accuracy, e.loss)) {
      const { type: _t, time: _time, elapsedMs: _e, seq: _s, ...point } = e;
      evals.push(point);
    }
  }

  const summaryFile = join(abs, 'summary.json');
  let summary: RunSummary | undefined;
  if (existsSync(summaryFile)) summary = parseJson<RunSummary>(summaryFile);
  else notes.push('no summary.json: the run is still going, or was killed before it could write one');

  const configFile = join(abs, 'config.yaml');
  const configText = existsSync(configFile) ? readText(configFile) : undefined;
  if (configText === undefined) notes.push('no config.yaml in the run directory');

  const model = readModel(abs, notes);
  return {
    dir: abs,
    label: basename(abs),
    name: name ?? summary?.name ?? basename(abs),
    status: summary?.status ?? 'running',
    summary,
    configFile: configText === undefined ? undefined : configFile,
    configText,
    train,
    evals,
    model,
    notes,
  };
}

/** model.json + weights.f32, checked against each other; absent when the run has no final weights. */
function readModel(dir: string, notes: string[]): RunModel | undefined {
  const modelFile = join(dir, 'model.json');
  if (!existsSync(modelFile)) {
    notes.push('no model.json: the run did not finish, so there are no final weights to draw');
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
