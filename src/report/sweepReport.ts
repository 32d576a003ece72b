/**
 * `rxtrain report <sweep-dir>`: what a sweep found, read from its directory — the state
 * (sweep.json) for every trial's parameters, status and metric, and the run directories of the
 * top trials for their curves and of the best one for its confusion matrix and weights. Like the
 * run report, it reads and draws; it computes nothing the runs did not record.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readState, SWEEP_FILES, type TrialRecord, trialDir } from '../sweep/sweepState.js';
import { bestTrial, compareMetric, type SweepSummary } from '../sweep/sweepSummary.js';
import { RxtrainError } from '../util/errors.js';
import { weightTemplates } from './pictures.js';
import { type RunData, readRunDir } from './runDir.js';
import { renderSweepReport } from './sweepPage.js';

/** How many of the best trials have their curves overlaid. */
export const TOP_CURVES = 5;

export function isSweepDir(dir: string): boolean {
  return existsSync(join(resolve(dir), SWEEP_FILES.state));
}

export interface SweepReportData {
  dir: string;
  name: string;
  status: SweepSummary['status'];
  method: string;
  scheduler: string | null;
  metric: string;
  mode: 'max' | 'min';
  varying: string[];
  /** Best first: done, then stopped early, then the unfinished, then failed (sweepPage explains). */
  trials: TrialRecord[];
  best?: TrialRecord;
  /** The top trials' runs (curves), the best one's first. */
  top: RunData[];
  stepsSpent: number;
}

/** Status groups in table order: comparable results first. */
const GROUP: Record<string, number> = {
  done: 0,
  'stopped-early': 1,
  running: 2,
  interrupted: 2,
  planned: 2,
  failed: 3,
};

export function readSweepDir(dir: string, onWarning?: (message: string) => void): SweepReportData {
  const abs = resolve(dir);
  const state = readState(abs);
  if (!state) throw new RxtrainError('E_USAGE', `${dir}: not a sweep directory (no ${SWEEP_FILES.state})`);
  const summaryFile = join(abs, SWEEP_FILES.summary);
  const status: SweepSummary['status'] = existsSync(summaryFile)
    ? (JSON.parse(readFileSync(summaryFile, 'utf8')) as SweepSummary).status
    : 'running';
  const better = compareMetric(state.mode);
  const trials = [...state.trials].sort(
    (a, b) => GROUP[a.status]! - GROUP[b.status]! || better(a.metric, b.metric) || a.index - b.index,
  );
  const best = bestTrial(state);
  const top: RunData[] = [];
  for (const t of trials.filter((t) => t.status === 'done').slice(0, TOP_CURVES)) {
    try {
      top.push(readRunDir(trialDir(abs, t.id)));
      top.at(-1)!.label = t.id;
    } catch (error) {
      onWarning?.(`trial ${t.id}: ${(error as Error).message}`);
    }
  }
  return {
    dir: abs,
    name: state.name,
    status,
    method: state.method,
    scheduler: state.scheduler
      ? `ASHA (η ${state.scheduler.reductionFactor}, rungs from ${state.scheduler.minResource} ${state.scheduler.resource})`
      : null,
    metric: state.metric,
    mode: state.mode,
    varying: state.varying,
    trials,
    best,
    top,
    stepsSpent: state.trials.reduce((n, t) => n + t.stepsSpent, 0),
  };
}

export function buildSweepReport(
  dir: string,
  onWarning?: (message: string) => void,
): { html: string; trials: number } {
  const data = readSweepDir(dir, onWarning);
  const bestRun = data.best ? data.top.find((r) => r.label === data.best!.id) : undefined;
  const templates = bestRun?.model ? weightTemplates(bestRun.model) : undefined;
  return { html: renderSweepReport(data, bestRun, templates), trials: data.trials.length };
}
