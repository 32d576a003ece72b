/**
 * Where a sweep's trial attempts run. The scheduler (runSweep.ts) decides what runs when and records
 * what became of it; a launcher only starts an attempt and reports its events and its end. Locally
 * an attempt runs in one of the sweep's trial hosts (trialPool.ts), its run directory the trial's
 * own directory in the sweep; over a queue (src/queue/) it is a job a worker on another machine
 * takes, its run directory copied into the sweep's before `exited` resolves — so the scheduler
 * reads both the same way.
 */
import type { RxtrainEvent } from '../pipeline/events.js';
import type { TrialRecord } from './sweepState.js';
import type { TrialExit } from './trialProcess.js';

export interface AttemptRequest {
  trial: TrialRecord;
  /** The trial's run directory in the sweep directory. */
  dir: string;
  /** `rxtrain` arguments of the attempt: `run <base> --set … --run-dir <dir>` or `resume <dir>`. */
  args: readonly string[];
  /** The trial's log in the sweep directory (every attempt appended). */
  logFile: string;
  /** Every event of the attempt's log, as it is written. */
  onEvent: (event: RxtrainEvent) => void;
}

export interface TrialAttempt {
  /** The process id, where the attempt is a local process (0 elsewhere). */
  pid: number;
  /** How it ended; by then every event was passed on and the run directory is complete. */
  exited: Promise<TrialExit>;
  /** Ask it to stop: SIGTERM checkpoints and exits 143. */
  kill(signal: NodeJS.Signals): void;
  /** Stop following it and leave it running (a remote attempt outlives the sweep process). */
  detach?(): void;
}

export interface TrialLauncher {
  /** A signal to the sweep process detaches from the attempts instead of stopping them. */
  readonly detachOnSignal: boolean;
  /** Trials may run side by side from the start (each worker decodes its data into its own cache). */
  readonly parallelFromStart: boolean;
  start(request: AttemptRequest): TrialAttempt;
}
