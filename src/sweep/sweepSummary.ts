/**
 * `sweep-summary.json`: every trial's parameters, status, metric, steps and time, and the best
 * trial — rewritten (atomically) whenever a trial finishes, so it is current while the sweep runs.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.js';
import type { Point } from './searchSpace.js';
import { SWEEP_FILES, type SweepState, type TrialRecord, type TrialStatus, trialDir } from './sweepState.js';

export interface SweepSummary {
  name: string;
  sweepDir: string;
  status: 'running' | 'completed' | 'failed' | 'interrupted';
  method: 'grid' | 'random';
  scheduler: SweepState['scheduler'];
  metric: string;
  mode: 'max' | 'min';
  planned: number;
  counts: Partial<Record<TrialStatus, number>>;
  /** Parameters whose value differs between trials. */
  varying: string[];
  stepsSpent: number;
  /** Wall time of every trial process, summed, ms. */
  trialMs: number;
  best?: { trial: string; value: number; params: Point; runDir: string };
  trials: {
    id: string;
    params: Point;
    status: TrialStatus;
    metric?: number;
    steps?: number;
    stepsSpent: number;
    durationMs: number;
    attempts: number;
    runDir: string;
    weightsSha256?: string;
    error?: string;
    /** ASHA: the last rung reached. */
    rung?: number;
  }[];
}

export function countStatuses(trials: readonly TrialRecord[]): Partial<Record<TrialStatus, number>> {
  const counts: Partial<Record<TrialStatus, number>> = {};
  for (const t of trials) counts[t.status] = (counts[t.status] ?? 0) + 1;
  return counts;
}

/** Better first; a trial without a number for the metric last. */
export function compareMetric(mode: 'max' | 'min'): (a?: number, b?: number) => number {
  const score = (v?: number) =>
    v !== undefined && Number.isFinite(v) ? (mode === 'max' ? v : -v) : Number.NEGATIVE_INFINITY;
  return (a, b) => score(b) - score(a) || 0;
}

/** The best completed trial (stopped-early ones were judged on less training, failed ones not at all). */
export function bestTrial(state: SweepState): TrialRecord | undefined {
  const better = compareMetric(state.mode);
  return state.trials
    .filter((t) => t.status === 'done' && t.metric !== undefined && Number.isFinite(t.metric))
    .sort((a, b) => better(a.metric, b.metric) || a.index - b.index)[0];
}

export function buildSummary(
  sweepDir: string,
  state: SweepState,
  status: SweepSummary['status'],
): SweepSummary {
  const best = bestTrial(state);
  return {
    name: state.name,
    sweepDir,
    status,
    method: state.method,
    scheduler: state.scheduler,
    metric: state.metric,
    mode: state.mode,
    planned: state.trials.length,
    counts: countStatuses(state.trials),
    varying: state.varying,
    stepsSpent: state.trials.reduce((n, t) => n + t.stepsSpent, 0),
    trialMs: state.trials.reduce((n, t) => n + t.durationMs, 0),
    ...(best
      ? {
          best: {
            trial: best.id,
            value: best.metric!,
            params: best.params,
            runDir: trialDir(sweepDir, best.id),
          },
        }
      : {}),
    trials: state.trials.map((t) => ({
      id: t.id,
      params: t.params,
      status: t.status,
      metric: t.metric,
      steps: t.steps,
      stepsSpent: t.stepsSpent,
      durationMs: t.durationMs,
      attempts: t.attempts,
      runDir: trialDir(sweepDir, t.id),
      ...(t.weightsSha256 ? { weightsSha256: t.weightsSha256 } : {}),
      ...(t.error ? { error: t.error } : {}),
      ...(t.rungs.length ? { rung: t.rungs.at(-1)!.rung } : {}),
    })),
  };
}

export function writeSummary(sweepDir: string, summary: SweepSummary): void {
  writeFileAtomic(join(sweepDir, SWEEP_FILES.summary), `${JSON.stringify(summary, null, 1)}\n`);
}
