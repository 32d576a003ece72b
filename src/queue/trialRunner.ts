/**
 * A worker's processing of one trial job: rebuild the trial's run directory from its bundle in
 * Redis (or start it fresh), run the trial as a child `rxtrain` process (the SGD runs there, so this
 * process's event loop stays free to renew BullMQ's lock — taskforcesh/bullmq#1497), and meanwhile
 *
 *   - forward its events to the sweep (trialEventStream.ts),
 *   - upload the run directory each time a newer checkpoint file appears, and at the end,
 *   - obey a stop request (ASHA, --fail-fast): SIGTERM, the trial checkpoints and exits 143,
 *   - give up if another worker now holds the job's lock (this one was taken for dead).
 *
 * When the worker itself is stopped (SIGTERM/SIGINT), its trials checkpoint, the checkpoint is
 * uploaded and the job is moved back to waiting — handed back, not failed — for another worker.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Job, WaitingError } from 'bullmq';
import type { Redis } from 'ioredis';
import { RUN_FILES } from '../pipeline/runDir.js';
import { fileSize, runLockReleased, startTrialProcess, type TrialProcess } from '../sweep/trialProcess.js';
import { TrialWatcher } from '../sweep/trialWatcher.js';
import { RxtrainError } from '../util/errors.js';
import { readHolder } from '../util/fileLock.js';
import { isAlive } from '../util/process.js';
import { loadBundle, saveBundle } from './bundleStore.js';
import { keysOf } from './queueKeys.js';
import { newestCheckpoint, packRunDir, unpackRunDir } from './runBundle.js';
import { trialEventForwarder } from './trialEventStream.js';
import { TrialJobData, type TrialJobResult } from './trialJob.js';

export interface TrialRunnerContext {
  redis: Redis;
  /** This worker's name (host and pid): recorded in each result. */
  name: string;
  workDir: string;
  cacheDir: string;
  /** How a trial process starts: node, its flags and bin/rxtrain.js. */
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The worker is stopping: trials that stop now are handed back. */
  stopping: () => boolean;
  /** The trials running now, by job id (the worker signals them when it stops). */
  running: Map<string, TrialProcess>;
  /** By trial id: look at its stop request now (the worker was told one was written). */
  wake: Map<string, () => void>;
  pollMs: number;
  say: (line: string) => void;
}

/** The last 16 KB of what a trial wrote to its log since `from`. */
function logTail(file: string, from: number): string {
  try {
    const text = readFileSync(file).subarray(from);
    return text.subarray(Math.max(0, text.byteLength - 16_384)).toString('utf8');
  } catch {
    return '';
  }
}

/**
 * A trial process that outlived a worker killed alone (not with its process group) still holds its
 * run directory here: it can upload nothing (its worker is gone), and the trial is this job's now,
 * so it is stopped before the directory is rebuilt.
 */
async function stopLeftover(dir: string): Promise<void> {
  const holder = readHolder(join(dir, RUN_FILES.lock));
  if (!holder || holder.host !== hostname() || !isAlive(holder.pid)) return;
  try {
    process.kill(holder.pid, 'SIGKILL');
  } catch {
    return; // gone meanwhile, or not ours to signal
  }
  await runLockReleased(dir, 50);
}

export async function runTrialJob(
  job: Job,
  token: string | undefined,
  ctx: TrialRunnerContext,
): Promise<TrialJobResult> {
  const data = TrialJobData.parse(job.data);
  const jobId = job.id!;
  const keys = keysOf(data.queue);
  const home = join(ctx.workDir, data.queue);
  const dir = join(home, 'trials', data.trial);
  mkdirSync(join(home, 'logs'), { recursive: true });
  await stopLeftover(dir);
  const bundle = await loadBundle(ctx.redis, data.queue, data.trial);
  let args: string[];
  if (bundle) {
    unpackRunDir(bundle, dir);
    args = ['resume', dir];
  } else {
    rmSync(dir, { recursive: true, force: true });
    const base = join(home, data.base.name);
    writeFileSync(base, data.base.text);
    args = ['run', base, ...data.overrides.flatMap((s) => ['--set', s]), '--run-dir', dir];
  }
  const logFile = join(home, 'logs', `${data.trial}.log`);
  const logFrom = fileSize(logFile);
  ctx.say(`trial ${data.trial}: ${args[0]} (job ${jobId}, attempt ${job.attemptsStarted})`);
  const child = startTrialProcess(
    [...ctx.command, ...args, '--cache', ctx.cacheDir, '--quiet'],
    logFile,
    ctx.env,
  );
  ctx.running.set(jobId, child);
  const started = performance.now();

  const fence = { id: jobId, token: token ?? '' };
  let lockLost = false;
  let uploads = Promise.resolve(true);
  const upload = () => {
    uploads = uploads.then(
      async (held) => held && saveBundle(ctx.redis, data.queue, fence, data.trial, packRunDir(dir)),
    );
    return uploads;
  };
  let uploaded = bundle ? newestCheckpoint(dir) : undefined;
  let stoppedAt: number | undefined;
  const watcher = new TrialWatcher(
    join(dir, RUN_FILES.events),
    trialEventForwarder(ctx.redis, data.queue, data.trial),
  );
  /** Obey a stop request, if one was written. */
  const checkStop = async () => {
    const stop = await ctx.redis.get(keys.stop(data.trial));
    if (stop === null || stoppedAt !== undefined) return;
    stoppedAt = Number(stop);
    child.kill('SIGTERM');
  };
  let polling = false;
  const check = async () => {
    if (polling) return;
    polling = true;
    try {
      await checkStop();
      const newest = newestCheckpoint(dir);
      if (newest && newest !== uploaded) {
        uploaded = newest;
        if (!(await upload())) lockLost = true;
      }
      // Another worker's token: this one was taken for dead and the trial runs there now.
      const holder = await ctx.redis.get(keys.lock(jobId));
      if (holder !== null && holder !== fence.token) lockLost = true;
      if (lockLost) child.kill('SIGKILL');
    } catch {
      // Redis away for a moment: the next poll tries again.
    } finally {
      polling = false;
    }
  };
  const poll = setInterval(check, ctx.pollMs);
  ctx.wake.set(data.trial, () => void checkStop().catch(() => {}));

  let exit: Awaited<TrialProcess['exited']>;
  try {
    exit = await child.exited;
  } finally {
    clearInterval(poll);
    watcher.stop();
    ctx.running.delete(jobId);
    ctx.wake.delete(data.trial);
  }
  const kept = (await uploads.catch(() => false)) && (await upload());
  if (!kept || lockLost)
    throw new RxtrainError(
      'E_QUEUE',
      `trial ${data.trial}: lost job ${jobId} to another worker; its result is theirs`,
    );
  const handBack = ctx.stopping() && stoppedAt === undefined && (exit.code === 143 || exit.code === 130);
  ctx.say(
    `trial ${data.trial}: ${handBack ? 'checkpointed and handed back' : `exited ${exit.code ?? exit.signal}`}`,
  );
  if (handBack) {
    await job.moveToWait(token);
    throw new WaitingError();
  }
  return {
    code: exit.code,
    signal: exit.signal,
    wallMs: Math.round(performance.now() - started),
    ...(stoppedAt !== undefined ? { stoppedAt } : {}),
    worker: ctx.name,
    log: logTail(logFile, logFrom),
  };
}
