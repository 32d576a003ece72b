/**
 * A trial as a process of its own: `rxtrain run <base> --set …` or `rxtrain resume <trial dir>`,
 * its stdout and stderr appended to a log file in the sweep directory (not a pipe, so a trial
 * outlives a killed sweep without dying of a broken pipe, and its output is kept). The trial stays
 * in the sweep's process group: a Ctrl-C on the terminal, or a kill of the group, reaches it too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RUN_FILES } from '../pipeline/runDir.js';
import { readHolder } from '../util/fileLock.js';
import { isAlive } from '../util/process.js';

export interface TrialExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How long the trial's process ran, where it was timed elsewhere (a queued trial's worker). */
  wallMs?: number;
}

export interface TrialProcess {
  pid: number;
  exited: Promise<TrialExit>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Spawn `argv` with its stdout and stderr appended to `logFile` (and an IPC channel if `ipc`), and
 * how it ends.
 */
export function spawnLogged(
  argv: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
  ipc = false,
): { child: ChildProcess; exited: Promise<TrialExit> } {
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', log, log, ...(ipc ? ['ipc' as const] : [])],
      env,
    });
  } finally {
    closeSync(log); // the child has its own copy of the descriptor
  }
  const exited = new Promise<TrialExit>((resolve) => {
    child.once('error', () => resolve({ code: null, signal: null }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, exited };
}

/** Start `argv` (node, its flags, bin/rxtrain.js, then the command's arguments), logging to `logFile`. */
export function startTrialProcess(
  argv: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
): TrialProcess {
  const { child, exited } = spawnLogged(argv, logFile, env);
  return {
    pid: child.pid ?? -1,
    exited,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Size of a file, 0 when absent: where this attempt's part of a log begins. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The last `rxtrain: …` line written to a log after `from` (a failed trial's error line). */
export function lastErrorLine(logFile: string, from: number): string | undefined {
  const size = fileSize(logFile);
  const start = Math.max(from, size - 16_384);
  if (size <= start) return undefined;
  const fd = openSync(logFile, 'r');
  try {
    const buffer = Buffer.alloc(size - start);
    readSync(fd, buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').split('\n').filter(Boolean);
    return (
      lines.findLast((l) => l.startsWith('rxtrain: ') && !l.startsWith('rxtrain: warning')) ?? lines.at(-1)
    )?.replace(/^rxtrain: /, '');
  } finally {
    closeSync(fd);
  }
}

/**
 * Wait while a live process on this host holds the trial's run lock: a trial that outlived a killed
 * sweep finishes (or is stopped) before the sweep takes the trial up again.
 */
export async function runLockReleased(runDir: string, pollMs = 200, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const holder = readHolder(join(runDir, RUN_FILES.lock));
    if (!holder || holder.host !== hostname() || !isAlive(holder.pid) || signal?.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
