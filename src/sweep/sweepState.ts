/**
 * The durable state of a sweep, `sweep.json` in the sweep directory: the plan and what became of
 * each trial. It is rewritten whole, atomically (util/atomicFile.ts: complete or absent), at every
 * change of a trial's status, so a sweep killed at any moment leaves the last state it reached:
 *
 *   planned        not started
 *   running        a process was started for it (after a crash: resumed from its checkpoint)
 *   done           its run completed
 *   failed         its run failed, or its config did not validate: final, never run again
 *   stopped-early  ASHA stopped it at a rung (its checkpoint stays: a promotion resumes it)
 *   interrupted    stopped with the sweep (a signal, or --fail-fast): resumed next time
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import type { PlannedTrial, SweepPlan } from './plan.js';
import { describePoint, type Point } from './searchSpace.js';
import type { SweepSpec } from './sweepFile.js';
import type { AshaSpec } from './sweepSchema.js';

/** The files of a sweep directory, by role. */
export const SWEEP_FILES = {
  state: 'sweep.json',
  /** A copy of the sweep file as started (or last extended): what `sweep resume` loads. */
  file: 'sweep.yaml',
  /** An inline base, written out for the trials to run. */
  base: 'base.yaml',
  lock: 'sweep.lock',
  events: 'events.ndjson',
  summary: 'sweep-summary.json',
  /** One ordinary run directory per trial, named by its id. */
  trials: 'trials',
  /** Each trial's stdout and stderr, all attempts appended. */
  logs: 'logs',
} as const;

export const STATE_FORMAT = 1;

export type TrialStatus = 'planned' | 'running' | 'done' | 'failed' | 'stopped-early' | 'interrupted';
/** Statuses a sweep does not run again. */
export const FINAL: readonly TrialStatus[] = ['done', 'failed', 'stopped-early'];

/** A trial's metric when it reached an ASHA rung. */
export interface RungResult {
  rung: number;
  /** The rung's resource (steps or epochs). */
  resource: number;
  /** The evaluation's step and value. */
  step: number;
  value: number;
}

export interface TrialRecord {
  id: string;
  index: number;
  params: Point;
  overrides: string[];
  status: TrialStatus;
  /** Processes started for it (a run, then each resume). */
  attempts: number;
  /** The metric at its last evaluation. */
  metric?: number;
  /** The step its model reached. */
  steps?: number;
  /** SGD steps its processes trained, over every attempt (work redone after a crash included). */
  stepsSpent: number;
  /** Wall time of its processes, ms. */
  durationMs: number;
  weightsSha256?: string;
  /** The error line of a failed trial. */
  error?: string;
  exitCode?: number;
  /** ASHA: the rungs it reached, and those it was promoted from (went on past). */
  rungs: RungResult[];
  promoted: number[];
}

export interface SweepState {
  format: number;
  rxtrainVersion: string;
  name: string;
  /** The sweep file it was started from, and the experiment its trials run. */
  sweepFile: string;
  baseFile: string;
  /** The `--set` overrides it was started with. */
  overrides: string[];
  method: 'grid' | 'random';
  metric: string;
  mode: 'max' | 'min';
  scheduler: AshaSpec | null;
  varying: string[];
  created: string;
  /** Set once --extend added trials: trials no longer planned by the file are then expected. */
  extended?: boolean;
  /** The Redis its trials are queued on (`sweep --queue`; a password masked), when they are. */
  queue?: string;
  trials: TrialRecord[];
}

export function readState(dir: string): SweepState | undefined {
  const path = join(dir, SWEEP_FILES.state);
  if (!existsSync(path)) return undefined;
  let state: SweepState;
  try {
    state = JSON.parse(readFileSync(path, 'utf8')) as SweepState;
  } catch (error) {
    throw new RxtrainError('E_RESUME', `${path}: not valid JSON (${(error as Error).message})`);
  }
  if (state.format !== STATE_FORMAT || !Array.isArray(state.trials))
    throw new RxtrainError('E_RESUME', `${path}: not a sweep state of format ${STATE_FORMAT}`);
  return state;
}

export function writeState(dir: string, state: SweepState): void {
  writeFileAtomic(join(dir, SWEEP_FILES.state), `${JSON.stringify(state, null, 1)}\n`);
}

function newRecord(t: PlannedTrial): TrialRecord {
  return {
    id: t.id,
    index: t.index,
    params: t.params,
    overrides: t.overrides,
    status: t.invalid ? 'failed' : 'planned',
    attempts: 0,
    stepsSpent: 0,
    durationMs: 0,
    rungs: [],
    promoted: [],
    ...(t.invalid ? { error: t.invalid } : {}),
  };
}

/** The state of a new sweep: every trial planned (or failed, when its config does not validate). */
export function newState(spec: SweepSpec, plan: SweepPlan, now: Date): SweepState {
  return {
    format: STATE_FORMAT,
    rxtrainVersion: VERSION,
    name: spec.name,
    sweepFile: spec.file,
    baseFile: spec.base.file,
    overrides: spec.cliOverrides,
    method: spec.method,
    metric: spec.metric,
    mode: spec.mode,
    scheduler: spec.scheduler ?? null,
    varying: plan.varying,
    created: now.toISOString(),
    trials: plan.trials.map(newRecord),
  };
}

/**
 * The recorded state checked against the plan the sweep file gives now. The same trials: go on.
 * New trials: an error unless `extend`, which adds them (trials recorded but no longer planned are
 * kept, results and all, and are expected from then on). A different metric or scheduler is always an error: the recorded
 * results were ranked, and stopped, by the old ones.
 */
export function reconcile(
  dir: string,
  state: SweepState,
  spec: SweepSpec,
  plan: SweepPlan,
  options: { extend: boolean },
): { state: SweepState; added: number } {
  const was = { metric: state.metric, mode: state.mode, scheduler: state.scheduler };
  const now = { metric: spec.metric, mode: spec.mode, scheduler: spec.scheduler ?? null };
  if (JSON.stringify(was) !== JSON.stringify(now)) {
    throw new RxtrainError(
      'E_USAGE',
      `${dir}: this sweep was started with ${describeRanking(was)}, the sweep file now says ${describeRanking(now)}; one sweep directory cannot mix them (use another --sweep-dir)`,
    );
  }
  const recorded = new Set(state.trials.map((t) => t.id));
  const planned = new Set(plan.trials.map((t) => t.id));
  const added = plan.trials.filter((t) => !recorded.has(t.id));
  const gone = state.trials.filter((t) => !planned.has(t.id));
  if (added.length === 0 && (gone.length === 0 || state.extended)) return { state, added: 0 };
  if (!options.extend) {
    const example = (t: { id: string; params: Point }) => `${t.id} ${describePoint(t.params)}`;
    const parts = [
      added.length
        ? `${added.length} planned now ${added.length === 1 ? 'is' : 'are'} not in it (e.g. ${example(added[0]!)})`
        : '',
      gone.length
        ? `${gone.length} of its trials ${gone.length === 1 ? 'is' : 'are'} no longer planned (e.g. ${example(gone[0]!)})`
        : '',
    ].filter(Boolean);
    throw new RxtrainError(
      'E_USAGE',
      `${dir}: the search space differs from the one this sweep was started with (${state.trials.length} trials): ${parts.join('; ')}. Pass --extend to add the new trials to it, or use another --sweep-dir`,
    );
  }
  const next = state.trials.length;
  const trials = [...state.trials, ...added.map((t, i) => newRecord({ ...t, index: next + i }))];
  const varying = [...new Set([...state.varying, ...plan.varying])];
  return { state: { ...state, trials, varying, sweepFile: spec.file, extended: true }, added: added.length };
}

function describeRanking(r: { metric: string; mode: string; scheduler: AshaSpec | null }): string {
  const scheduler = r.scheduler ? `ASHA ${JSON.stringify(r.scheduler)}` : 'no scheduler';
  return `metric ${r.metric} (${r.mode}) and ${scheduler}`;
}

export function trialDir(sweepDir: string, id: string): string {
  return join(sweepDir, SWEEP_FILES.trials, id);
}
