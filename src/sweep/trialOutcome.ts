/**
 * What a trial's run directory says about it, read the way `rxtrain report` reads it: summary.json
 * for how the last attempt ended, events.ndjson for the metric (the last evaluation of the metric's
 * split) and for the steps an attempt trained, run.json for the config hash its id must match.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEvents, type RxtrainEvent } from '../pipeline/events.js';
import type { RunSummary } from '../pipeline/run.js';
import { RUN_FILES, type RunRecord } from '../pipeline/runDir.js';

export type EvalEvent = Extract<RxtrainEvent, { type: 'eval' }>;

/** The metric an evaluation gives: accuracy, loss, or the macro-averaged F1. */
export function metricOf(
  e: Pick<EvalEvent, 'accuracy' | 'loss' | 'f1'>,
  name: 'accuracy' | 'loss' | 'f1',
): number {
  if (name === 'accuracy') return e.accuracy;
  if (name === 'loss') return e.loss;
  const f1 = e.f1 ?? [];
  return f1.length ? f1.reduce((a, b) => a + b, 0) / f1.length : Number.NaN;
}

export interface TrialFiles {
  summary?: RunSummary;
  /** The config hash run.json records (the trial's id is its first characters). */
  configHash?: string;
  /** The last evaluation's metric. */
  metric?: number;
  /** The furthest step the log shows, and the step the latest attempt resumed from. */
  lastStep: number;
  resumedFrom: number;
}

export function readTrialFiles(
  runDir: string,
  metric: { split: string; name: 'accuracy' | 'loss' | 'f1' },
): TrialFiles {
  const summary = readJson<RunSummary>(join(runDir, RUN_FILES.summary));
  const record = readJson<RunRecord>(join(runDir, RUN_FILES.record));
  const eventsFile = join(runDir, RUN_FILES.events);
  const events = existsSync(eventsFile) ? parseEvents(readFileSync(eventsFile, 'utf8')) : [];
  let value: number | undefined;
  let lastStep = 0;
  let resumedFrom = 0;
  for (const e of events) {
    if (e.type === 'eval' && e.split === metric.split) value = metricOf(e, metric.name);
    if (e.type === 'resumed') resumedFrom = e.step;
    if (e.type === 'train' || e.type === 'eval' || e.type === 'checkpoint')
      lastStep = Math.max(lastStep, e.step);
    if (e.type === 'run-finished') lastStep = Math.max(lastStep, e.steps);
  }
  return { summary, configHash: record?.configHash, metric: value, lastStep, resumedFrom };
}

/** SGD steps the latest attempt trained: from where it resumed to where it stopped. */
export function stepsOfAttempt(files: TrialFiles): number {
  const s = files.summary;
  if (s) return Math.max(0, s.steps - (s.resumedFrom ?? 0));
  return Math.max(0, files.lastStep - files.resumedFrom);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
