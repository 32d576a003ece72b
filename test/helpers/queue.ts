/** Workers for the queue tests: `rxtrain worker` processes, each in a process group of its own. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { queueNameOf } from '../../src/queue/queueKeys.js';
import { BIN, ROOT } from './index.js';
import { readState } from './sweep.js';

export interface TestWorker {
  name: string;
  workDir: string;
  /** Its stderr so far (one line per trial taken and finished). */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signal the worker alone. */
  kill(signal: NodeJS.Signals): void;
  /** SIGKILL its whole process group: the worker and its trials, as when a machine dies. */
  killGroup(): void;
}

/** Every trial process holds after its second `train` event (step 200) until `release` exists. */
export function holdEnv(release: string): NodeJS.ProcessEnv {
  const preload = pathToFileURL(join(ROOT, 'dist/test/helpers/holdTraining.js')).href;
  return { NODE_OPTIONS: `--import ${preload}`, HOLD_AFTER_TRAIN: '2', HOLD_RELEASE: release };
}

/** Process groups of workers not yet stopped: killed when the test file's process exits. */
const groups = new Set<number>();
process.once('exit', () => {
  for (const pid of groups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function startWorker(
  root: string,
  name: string,
  url: string,
  env: NodeJS.ProcessEnv = {},
  extra: string[] = [],
): TestWorker {
  const workDir = join(root, `work-${name}`);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      'worker',
      '--queue',
      url,
      '--work-dir',
      workDir,
      '--cache',
      join(root, `cache-${name}`),
      '--lock-duration',
      '3000',
      ...extra,
    ],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...env } },
  );
  let output = '';
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  groups.add(child.pid!);
  return {
    name,
    workDir,
    output: () => output,
    exited,
    kill: (signal) => child.kill(signal),
    killGroup: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    },
  };
}

/** Lines `trial <id>: run|resume` a worker logged: the attempts it started. */
export function attemptsOf(worker: TestWorker): { trial: string; action: string }[] {
  return [...worker.output().matchAll(/trial (\w+): (run|resume) \(job/g)].map((m) => ({
    trial: m[1]!,
    action: m[2]!,
  }));
}

/** Whether Redis holds a run bundle of the trial (it has uploaded a checkpoint). */
export async function hasBundle(url: string, sweepDir: string, trial: string): Promise<boolean> {
  const state = readState(sweepDir);
  if (!state) return false;
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const bytes = await redis.getBuffer(`rxtrain:${queueNameOf(state, sweepDir)}:bundle:${trial}`);
    return !!bytes && bytes.includes('ckpt-');
  } finally {
    redis.disconnect();
  }
}

/** Poll an async condition until it holds; fails after `timeoutMs`. */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
