/**
 * How a trial's attempt ended, decided from its run directory (trialOutcome.ts) and its exit:
 *
 *   done           summary.json says completed (and the run's config hash starts with the id)
 *   stopped-early  ASHA stopped it at a rung: SIGTERM, a checkpoint, exit 143
 *   failed         the run failed (its error line), exited with a code of its own, or was killed
 *                  by a signal nobody asked for (an out-of-memory kill would come back forever)
 *   interrupted    stopped by a signal with the sweep (resumed next time), or by someone's signal
 *                  to the trial alone (left for the next session)
 *
 * A trial found `running` by a resumed sweep has no exit: its process died with the old sweep, and
 * its run directory alone says what it had done.
 */
import type { TrialRecord } from './sweepState.js';
import { stepsOfAttempt, type TrialFiles } from './trialOutcome.js';
import type { TrialExit } from './trialProcess.js';

export interface AttemptEnd {
  exit: TrialExit | undefined;
  wallMs: number;
  /** The rung ASHA stopped it at, when it did. */
  stoppedAt?: number;
  /** The sweep is stopping (a signal, --fail-fast): a stopped trial is interrupted, not failed. */
  stopping: boolean;
  runDir: string;
  /** The trial's last error line in its log, for a failure without a summary. */
  errorLine: () => string | undefined;
}

/** Update the trial's record; `leaveAlone` when someone else stopped it (not to restart now). */
export function settleAttempt(t: TrialRecord, files: TrialFiles, end: AttemptEnd): { leaveAlone: boolean } {
  const { exit } = end;
  const s = files.summary;
  t.stepsSpent += stepsOfAttempt(files);
  t.durationMs += end.wallMs;
  if (s) t.steps = s.steps;
  if (files.metric !== undefined) t.metric = files.metric;
  t.exitCode = exit?.code ?? undefined;
  // A trial found running whose last rung went unpromoted was being stopped there by ASHA.
  const lastRung = t.rungs.at(-1)?.rung;
  const byAsha =
    end.stoppedAt !== undefined ||
    (exit === undefined && lastRung !== undefined && !t.promoted.includes(lastRung));
  if (s?.status === 'completed' && (exit === undefined || exit.code === 0)) {
    if (files.configHash && !files.configHash.startsWith(t.id)) {
      t.status = 'failed';
      t.error = `E_SWEEP: ${end.runDir} ran a config with hash ${files.configHash.slice(0, 12)}, not the trial's ${t.id}`;
    } else {
      t.status = 'done';
      t.weightsSha256 = s.weightsSha256;
    }
  } else if (
    byAsha &&
    (exit === undefined ? s?.status !== 'failed' : s?.status === 'interrupted' || exit.code === 143)
  ) {
    t.status = 'stopped-early';
  } else if (s?.status === 'failed' || (exit && exit.code !== null && ![0, 130, 143].includes(exit.code))) {
    t.status = 'failed';
    t.error = s?.error
      ? `${s.error.code}: ${s.error.message}`
      : (end.errorLine() ?? `exited with code ${exit?.code}`);
  } else if (exit?.signal && !end.stopping) {
    t.status = 'failed';
    t.error = `killed by ${exit.signal}`;
  } else {
    t.status = 'interrupted';
    return { leaveAlone: !!exit && !end.stopping };
  }
  return { leaveAlone: false };
}
