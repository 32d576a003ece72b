/**
 * Running a sweep: trials as separate `rxtrain` processes, at most `parallel` at once (p-queue),
 * all sharing one data cache. Each slot, when it frees, takes the next job — with ASHA a
 * promotion first (asha.ts), then an interrupted trial (resumed from its checkpoint), then a
 * planned one. The first trial runs alone until its data is in the cache, so the data is decoded
 * once rather than by every trial at the same time.
 *
 * Every change of a trial's status is written to sweep.json before it is acted on (a trial is
 * `running` before its process starts), so a sweep killed at any moment is resumed by running
 * this again: trials it finds `running` are read from their run directories — completed ones are
 * recorded as done and never run again, the others continue from their own checkpoints with
 * `rxtrain resume`.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { type Clock, type RxtrainEvent, systemClock } from '../pipeline/events.js';
import { RUN_FILES } from '../pipeline/runDir.js';
import { describeError, RxtrainError } from '../util/errors.js';
import { Asha } from './asha.js';
import { settleAttempt } from './settle.js';
import { type SweepEventListener, SweepEventLog } from './sweepEvents.js';
import type { SweepSpec } from './sweepFile.js';
import {
  SWEEP_FILES,
  type SweepState,
  type TrialRecord,
  type TrialStatus,
  trialDir,
  writeState,
} from './sweepState.js';
import { bestTrial, buildSummary, countStatuses, type SweepSummary, writeSummary } from './sweepSummary.js';
import type { TrialAttempt, TrialLauncher } from './trialLauncher.js';
import { metricOf, readTrialFiles } from './trialOutcome.js';
import { trialPool } from './trialPool.js';
import { fileSize, lastErrorLine, runLockReleased, type TrialExit } from './trialProcess.js';

export interface SweepRunOptions {
  spec: SweepSpec;
  sweepDir: string;
  state: SweepState;
  /** Trials first recorded in this session (their config errors are announced once). */
  fresh: ReadonlySet<string>;
  resumed: boolean;
  parallel: number;
  /** The data cache every trial shares. */
  cacheDir: string;
  /** How a trial process starts: node, its flags and bin/rxtrain.js. */
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Stop the sweep at the first failed trial (the running ones are stopped with a checkpoint). */
  failFast?: boolean;
  /** Aborted on SIGINT/SIGTERM (`reason` is the signal's name). */
  signal?: AbortSignal;
  /** Where attempts run (default: trial hosts here, trialPool.ts, closed when the sweep ends). */
  launcher?: TrialLauncher;
  clock?: Clock;
  onEvent?: SweepEventListener;
  /** Every event of a running trial's log, as it is written (the progress display). */
  onTrialEvent?: (trial: string, event: RxtrainEvent) => void;
}

export interface SweepOutcome {
  status: 'completed' | 'failed' | 'interrupted';
  exitCode: number;
  summary: SweepSummary;
}

interface Job {
  trial: TrialRecord;
  /** The status it had before the slot took it (given back if the sweep stops first). */
  was: TrialStatus;
  promotedFrom?: number;
}

/** A trial whose attempt is running. */
interface Active {
  process: TrialAttempt;
  /** The rung ASHA stopped it at. */
  stoppedAt?: number;
}

/** Whether the data-stage cache (`<cache>/stages/*.rxdata`, pipeline/stageCache.ts) holds anything. */
function holdsDecodedData(cacheDir: string): boolean {
  try {
    return readdirSync(join(cacheDir, 'stages')).some((name) => name.endsWith('.rxdata'));
  } catch {
    return false;
  }
}

export async function runSweep(o: SweepRunOptions): Promise<SweepOutcome> {
  const { spec, state, sweepDir } = o;
  const clock = o.clock ?? systemClock;
  const started = clock.now();
  const log = new SweepEventLog(join(sweepDir, SWEEP_FILES.events), clock);
  if (o.onEvent) log.on(o.onEvent);
  const metric = { split: spec.metricSplit, name: spec.metricName };
  const asha = spec.scheduler ? new Asha(spec.scheduler, spec.mode) : undefined;
  const pool = o.launcher ? undefined : trialPool({ command: o.command, cacheDir: o.cacheDir, env: o.env });
  const launcher = o.launcher ?? pool!;
  const active = new Map<string, Active>();
  // Trials stopped by someone else's signal: left for the next session, not restarted in this one.
  const leftAlone = new Set<string>();
  let stopping: 'signal' | 'fail-fast' | 'fatal' | undefined;
  let fatal: unknown;
  // No need for the first trial to run alone once a trial has completed (its data is cached), or
  // when the cache holds decoded data already (most likely this sweep's: at worst, data of another
  // experiment, and the first two trials both decode theirs, as two plain runs would).
  let parallelNow =
    launcher.parallelFromStart ||
    state.trials.some((t) => t.status === 'done') ||
    holdsDecodedData(o.cacheDir);

  const save = () => writeState(sweepDir, state);
  const summarise = (status: SweepSummary['status']) => {
    const summary = buildSummary(sweepDir, state, status);
    writeSummary(sweepDir, summary);
    return summary;
  };

  for (const t of state.trials) {
    for (const r of t.rungs) asha?.record(t.id, r.rung, r.value);
    for (const k of t.promoted) asha?.markPromoted(t.id, k);
    // Left `running` by a sweep that was killed: what its run directory says now.
    if (t.status === 'running') settle(t, undefined, 0);
  }
  save();
  log.emit({
    type: 'sweep-started',
    name: state.name,
    sweepDir,
    method: state.method,
    scheduler: state.scheduler ? 'asha' : null,
    metric: state.metric,
    mode: state.mode,
    parallel: o.parallel,
    planned: state.trials.length,
    counts: countStatuses(state.trials),
    added: o.resumed ? o.fresh.size : 0,
    resumed: o.resumed,
    varying: state.varying,
  });
  for (const t of state.trials) {
    if (o.fresh.has(t.id) && t.status === 'failed') {
      log.emit({
        type: 'trial-finished',
        trial: t.id,
        status: 'failed',
        exitCode: null,
        stepsSpent: 0,
        durationMs: 0,
        error: t.error,
      });
      if (o.failFast) stopping = 'fail-fast';
    }
  }
  summarise('running');

  /** Record how an attempt ended (settle.ts); `exit` is undefined for a trial found `running`. */
  function settle(
    t: TrialRecord,
    exit: TrialExit | undefined,
    wallMs: number,
    stoppedAt?: number,
    logFrom = 0,
  ): void {
    const dir = trialDir(sweepDir, t.id);
    const { leaveAlone } = settleAttempt(t, readTrialFiles(dir, metric), {
      exit,
      wallMs,
      stoppedAt,
      stopping: !!stopping,
      runDir: dir,
      errorLine: () => lastErrorLine(join(sweepDir, SWEEP_FILES.logs, `${t.id}.log`), logFrom),
    });
    if (leaveAlone) leftAlone.add(t.id);
  }

  /** No trial is left to start: ASHA's tail (asha.ts), where the top ⌈n/η⌉ of a rung go on. */
  const inTail = () =>
    !state.trials.some((t) => t.status === 'planned' || (t.status === 'interrupted' && !leftAlone.has(t.id)));

  const nextJob = (): Job | undefined => {
    if (stopping) return undefined;
    if (asha) {
      const waiting = state.trials
        .filter((t) => t.status === 'stopped-early' && t.rungs.length > 0)
        .map((t) => ({ id: t.id, rung: t.rungs.at(-1)!.rung }));
      // In the tail, a promotion waits for the trials still running: their results may rank higher.
      const tail = inTail();
      const promotion = tail && active.size > 0 ? undefined : asha.promotable(waiting, tail);
      if (promotion) {
        const trial = state.trials.find((t) => t.id === promotion.id)!;
        return { trial, was: trial.status, promotedFrom: promotion.rung };
      }
    }
    const trial =
      state.trials.find((t) => t.status === 'interrupted' && !leftAlone.has(t.id)) ??
      state.trials.find((t) => t.status === 'planned');
    return trial && { trial, was: trial.status };
  };

  const queue = new PQueue({ concurrency: parallelNow ? Math.max(1, o.parallel) : 1 });
  const fill = () => {
    while (queue.size + queue.pending < queue.concurrency) {
      const job = nextJob();
      if (!job) return;
      // Taken now, so the next pass of this loop does not take it too.
      job.trial.status = 'running';
      queue.add(() => runJob(job)).catch((error) => stop('fatal', error));
    }
  };
  queue.on('next', fill);
  /** The data is in the shared cache (or the first trial is over): trials may now run side by side. */
  const goParallel = () => {
    if (parallelNow) return;
    parallelNow = true;
    queue.concurrency = Math.max(1, o.parallel);
    fill();
  };

  function stop(reason: 'signal' | 'fail-fast' | 'fatal', error?: unknown): void {
    if (reason === 'fatal' && fatal === undefined) fatal = error;
    if (stopping && stopping !== 'signal') return;
    stopping = stopping ?? reason;
    // Remote attempts go on without the sweep process: it stops following them.
    if (reason === 'signal' && launcher.detachOnSignal) {
      for (const a of active.values()) a.process.detach?.();
      return;
    }
    // SIGINT from a terminal reaches the trials through the process group; a second signal would
    // make them exit without their checkpoint. A SIGTERM to the sweep alone, --fail-fast and a
    // fatal error are passed on to the trials.
    if (reason !== 'signal' || o.signal?.reason === 'SIGTERM')
      for (const a of active.values()) a.process.kill('SIGTERM');
  }
  const onAbort = () => stop('signal');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();

  async function runJob(job: Job): Promise<void> {
    const t = job.trial;
    const dir = trialDir(sweepDir, t.id);
    await runLockReleased(dir, 200, o.signal);
    if (stopping) {
      t.status = job.was;
      return;
    }
    const action = existsSync(join(dir, RUN_FILES.config)) ? 'resume' : 'run';
    // A run killed before it wrote its config left nothing to keep (at most its lock).
    if (action === 'run') rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    if (job.promotedFrom !== undefined) {
      asha!.markPromoted(t.id, job.promotedFrom);
      t.promoted.push(job.promotedFrom);
    }
    t.attempts++;
    t.status = 'running';
    save();
    const args =
      action === 'run'
        ? ['run', spec.base.file, ...t.overrides.flatMap((s) => ['--set', s]), '--run-dir', dir]
        : ['resume', dir];
    const logFile = join(sweepDir, SWEEP_FILES.logs, `${t.id}.log`);
    const logFrom = fileSize(logFile);
    const attemptStarted = clock.now();
    const entry = {} as Active;
    const process = launcher.start({
      trial: t,
      dir,
      args,
      logFile,
      onEvent: (e) => onTrialEvent(t, entry, e),
    });
    entry.process = process;
    active.set(t.id, entry);
    log.emit({
      type: 'trial-started',
      trial: t.id,
      params: t.params,
      action,
      was: job.was,
      attempt: t.attempts,
      ...(job.promotedFrom !== undefined ? { promotedFrom: job.promotedFrom } : {}),
      pid: process.pid,
    });
    if (stopping === 'signal' && launcher.detachOnSignal) process.detach?.();
    else if (stopping) process.kill('SIGTERM');
    const exit = await process.exited;
    active.delete(t.id);
    const spentBefore = t.stepsSpent;
    // A queued attempt's own run time, not the time it waited for a worker.
    const wallMs = Math.round(exit.wallMs ?? clock.now() - attemptStarted);
    settle(t, exit, wallMs, entry.stoppedAt, logFrom);
    const status = t.status as TrialStatus;
    save();
    summarise('running');
    log.emit({
      type: 'trial-finished',
      trial: t.id,
      status,
      exitCode: exit.code,
      ...(t.metric !== undefined ? { metric: t.metric } : {}),
      ...(t.steps !== undefined ? { steps: t.steps } : {}),
      stepsSpent: t.stepsSpent - spentBefore,
      durationMs: wallMs,
      ...(status === 'failed' ? { error: t.error } : {}),
      ...(status === 'stopped-early' ? { rung: entry.stoppedAt } : {}),
    });
    goParallel();
    if (status === 'failed' && o.failFast) stop('fail-fast');
  }

  function onTrialEvent(t: TrialRecord, entry: Active, e: RxtrainEvent): void {
    o.onTrialEvent?.(t.id, e);
    if (
      (e.type === 'cache' && e.action !== 'miss') ||
      e.type === 'train' ||
      (e.type === 'warning' && e.code === 'W_CACHE_WRITE')
    )
      goParallel();
    if (!asha || e.type !== 'eval' || e.split !== spec.metricSplit) return;
    const value = metricOf(e, spec.metricName);
    for (let k = t.rungs.length; asha.reaches(k, e); k++) {
      const place = asha.record(t.id, k, value);
      t.rungs.push({ rung: k, resource: asha.resource(k), step: e.step, value });
      // Told to stop but still going (the signal lands at its next pause): its results still count.
      if (entry.stoppedAt !== undefined) continue;
      const decision = asha.decide(t.id, k, inTail());
      if (decision === 'stop') {
        // The signal first: every millisecond here is steps the trial trains past its rung.
        entry.stoppedAt = k;
        entry.process.kill('SIGTERM');
      } else t.promoted.push(k);
      save();
      log.emit({
        type: 'trial-rung',
        trial: t.id,
        rung: k,
        resource: asha.resource(k),
        step: e.step,
        value,
        ...place,
        decision,
      });
      if (decision === 'stop') return;
    }
  }

  try {
    fill();
    do await queue.onIdle();
    while (queue.size > 0 || queue.pending > 0);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    await pool?.close();
  }

  const counts = countStatuses(state.trials);
  const status: SweepOutcome['status'] =
    stopping === 'signal' ? 'interrupted' : (counts.failed ?? 0) > 0 || stopping ? 'failed' : 'completed';
  const exitCode =
    status === 'interrupted' ? (o.signal?.reason === 'SIGTERM' ? 143 : 130) : status === 'failed' ? 1 : 0;
  const summary = summarise(status);
  const best = bestTrial(state);
  log.emit({
    type: 'sweep-finished',
    status,
    counts,
    ...(best ? { best: { trial: best.id, value: best.metric!, params: best.params } } : {}),
    stepsSpent: summary.stepsSpent,
    durationMs: Math.round(clock.now() - started),
    exitCode,
  });
  log.close();
  if (fatal !== undefined) {
    throw fatal instanceof RxtrainError
      ? fatal
      : new RxtrainError('E_IO', `sweep stopped: ${describeError(fatal)}`);
  }
  return { status, exitCode, summary };
}
