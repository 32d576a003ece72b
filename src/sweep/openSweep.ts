/**
 * Opening a sweep directory: take its lock (one sweep process at a time), then either lay out a new
 * sweep — the state with every trial planned, a copy of the sweep file, an inline base written out
 * — or check the recorded one against the plan (sweepState.ts: `reconcile`).
 *
 *   <sweep-dir>/
 *     sweep.json          the durable state (sweepState.ts)
 *     sweep.yaml          the sweep file as started: what `rxtrain sweep resume` loads
 *     base.yaml           an inline base experiment, for the trials to run
 *     sweep.lock          held by the sweep process
 *     events.ndjson       sweep-level events (sweepEvents.ts)
 *     sweep-summary.json  results (sweepSummary.ts)
 *     trials/<id>/        one ordinary run directory per trial
 *     logs/<id>.log       each trial's stdout and stderr
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { FileLock, tryLockNow } from '../util/fileLock.js';
import type { SweepPlan } from './plan.js';
import type { SweepSpec } from './sweepFile.js';
import { newState, readState, reconcile, SWEEP_FILES, type SweepState, writeState } from './sweepState.js';

export interface OpenedSweep {
  dir: string;
  lock: FileLock;
  state: SweepState;
  /** Trials first recorded now (all of a new sweep; those --extend added). */
  fresh: Set<string>;
  resumed: boolean;
}

export function openSweep(
  spec: SweepSpec,
  plan: SweepPlan,
  dir: string,
  options: { extend: boolean },
): OpenedSweep {
  mkdirIo(dir);
  const lockPath = join(dir, SWEEP_FILES.lock);
  const lock = tryLockNow(lockPath);
  if (!(lock instanceof FileLock)) {
    const who = lock.heldBy
      ? `rxtrain process ${lock.heldBy.pid} on ${lock.heldBy.host}`
      : 'another rxtrain process';
    throw new RxtrainError(
      'E_USAGE',
      `${dir}: in use by ${who} (if no sweep runs there, delete ${lockPath})`,
    );
  }
  try {
    const recorded = readState(dir);
    let state: SweepState;
    let fresh: Set<string>;
    if (!recorded) {
      if (readdirSync(dir).some((name) => name !== SWEEP_FILES.lock))
        throw new RxtrainError(
          'E_USAGE',
          `${dir}: exists, is not empty and holds no sweep (no ${SWEEP_FILES.state}); use another --sweep-dir`,
        );
      state = newState(spec, plan, new Date());
      fresh = new Set(state.trials.map((t) => t.id));
    } else {
      const before = new Set(recorded.trials.map((t) => t.id));
      ({ state } = reconcile(dir, recorded, spec, plan, options));
      fresh = new Set(state.trials.filter((t) => !before.has(t.id)).map((t) => t.id));
    }
    if (!recorded || fresh.size > 0) writeFileAtomic(join(dir, SWEEP_FILES.file), spec.text);
    if (spec.base.inline && !existsSync(spec.base.file)) writeFileAtomic(spec.base.file, spec.base.text);
    mkdirIo(join(dir, SWEEP_FILES.trials));
    mkdirIo(join(dir, SWEEP_FILES.logs));
    writeState(dir, state);
    return { dir, lock, state, fresh, resumed: !!recorded };
  } catch (error) {
    lock.release();
    throw error;
  }
}

function mkdirIo(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new RxtrainError(
      'E_IO',
      `${dir}: cannot create directory (${(error as NodeJS.ErrnoException).code})`,
    );
  }
}
