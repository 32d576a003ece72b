/**
 * `rxtrain worker`: takes trials from every active sweep on a Redis server. Sweeps list their queues
 * in one set (queueKeys.ts); the worker looks at it every second and runs a BullMQ Worker for each
 * queue there, and closes the ones whose sweep has finished. Each takes up to `concurrency` trials
 * at once (per sweep: two sweeps at once may run 2 × N trials).
 *
 * Lock and stall settings: a worker renews the lock of each job it runs every lockDuration/2; a
 * worker killed outright stops renewing, and after lockDuration another worker's stall check (every
 * lockDuration/2) moves its job back to waiting, where a worker takes it and resumes the trial from
 * its last uploaded checkpoint. A job may stall 5 times before BullMQ fails it (a trial that kills
 * its worker every time must end somewhere).
 *
 * A signal (SIGTERM/SIGINT) stops taking jobs, stops every running trial with a checkpoint, hands
 * their jobs back, and resolves with 143/130.
 */
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { TrialProcess } from '../sweep/trialProcess.js';
import { bullConnection, probeRedis, redisClient } from './connection.js';
import { keysOf, SWEEP_REGISTRY } from './queueKeys.js';
import type { RedisTarget } from './redisUrl.js';
import type { TrialJobResult } from './trialJob.js';
import { runTrialJob } from './trialRunner.js';

export interface QueueWorkerOptions {
  target: RedisTarget;
  concurrency: number;
  workDir: string;
  cacheDir: string;
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  /** How long a job's lock lasts unrenewed: how soon a dead worker's trial is taken over. */
  lockDurationMs: number;
  /** Aborted on SIGINT/SIGTERM (`reason` is the signal's name). */
  signal?: AbortSignal;
  say: (line: string) => void;
}

export async function runQueueWorker(o: QueueWorkerOptions): Promise<number> {
  const probe = await probeRedis(o.target);
  for (const w of probe.warnings) o.say(`warning: ${w}`);
  const name = `${hostname()}:${process.pid}`;
  const redis = redisClient(o.target, `rxtrain-worker:${name}`);
  const workers = new Map<string, Worker<unknown, TrialJobResult, string>>();
  const running = new Map<string, TrialProcess>();
  const wake = new Map<string, () => void>();
  // Stop requests (ASHA) arrive as messages, so a trial stops within milliseconds of its rung.
  const listener = redisClient(o.target, `rxtrain-worker-stops:${name}`);
  listener.on('message', (_channel: string, trial: string) => wake.get(trial)?.());
  let stopping = false;
  const ctx = {
    redis,
    name,
    workDir: o.workDir,
    cacheDir: o.cacheDir,
    command: o.command,
    env: o.env,
    stopping: () => stopping,
    running,
    wake,
    pollMs: 250,
    say: o.say,
  };

  const open = (queue: string) => {
    const worker = new Worker<unknown, TrialJobResult, string>(
      queue,
      (job, token) => runTrialJob(job, token, ctx),
      {
        connection: bullConnection(o.target),
        concurrency: o.concurrency,
        name,
        lockDuration: o.lockDurationMs,
        stalledInterval: Math.max(500, Math.round(o.lockDurationMs / 2)),
        maxStalledCount: 5,
      },
    );
    worker.on('error', () => {}); // Redis away: BullMQ reconnects and goes on
    worker.on('failed', (job, error) => {
      if (job) o.say(`trial job ${job.id} failed: ${error.message}`);
    });
    workers.set(queue, worker);
    listener.subscribe(keysOf(queue).stopChannel).catch(() => {});
    o.say(`serving sweep queue ${queue}`);
  };

  const discover = async () => {
    if (stopping) return;
    let active: string[];
    try {
      active = await redis.smembers(SWEEP_REGISTRY);
    } catch {
      return; // Redis away: look again in a second
    }
    for (const queue of active) if (!workers.has(queue) && !stopping) open(queue);
    for (const [queue, worker] of workers) {
      if (active.includes(queue)) continue;
      workers.delete(queue);
      listener.unsubscribe(keysOf(queue).stopChannel).catch(() => {});
      void worker.close();
    }
  };
  o.say(
    `worker ${name} on ${o.target.shown} (Redis ${probe.version}), ${o.concurrency} trial(s) at once per sweep`,
  );
  await discover();
  const timer = setInterval(() => void discover(), 1000);

  const reason = await new Promise<string>((resolve) => {
    if (o.signal?.aborted) resolve(String(o.signal.reason));
    o.signal?.addEventListener('abort', () => resolve(String(o.signal?.reason)), { once: true });
  });
  stopping = true;
  clearInterval(timer);
  o.say(`${reason}: stopping ${running.size} trial(s) with a checkpoint and handing them back`);
  // A SIGINT from a terminal reaches the trials through the process group already; a second signal
  // would stop them without their checkpoint.
  if (reason !== 'SIGINT') for (const child of running.values()) child.kill('SIGTERM');
  await Promise.allSettled([...workers.values()].map((w) => w.close()));
  redis.disconnect();
  listener.disconnect();
  return reason === 'SIGTERM' ? 143 : reason === 'SIGHUP' ? 129 : 130;
}
