/**
 * The messages between a sweep and its trial hosts (trialPool.ts, cli/trialHost.ts), over the IPC
 * channel of the host's process.
 */

/** From the sweep: run one attempt (`rxtrain` arguments), its output appended to `logFile`. */
export interface RunMessage {
  type: 'run';
  id: number;
  args: string[];
  logFile: string;
}

/** From the sweep: stop attempt `id` as that signal would stop its own process (checkpoint, 143). */
export interface StopMessage {
  type: 'stop';
  id: number;
  signal: NodeJS.Signals;
}

/** From a host: attempt `id` ended with the exit code its own process would have had. */
export interface ExitedMessage {
  type: 'exited';
  id: number;
  code: number;
}

export type ToHost = RunMessage | StopMessage;
export type FromHost = ExitedMessage;
