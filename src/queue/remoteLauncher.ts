/**
 * The sweep's side of a queued sweep: a TrialLauncher (sweep/trialLauncher.ts) whose attempts are
 * BullMQ jobs. Starting an attempt enqueues the trial's job (job id = trial id: a job that is
 * already there, waiting or running on some worker, is followed, not added again); its events
 * arrive through the sweep's event stream; when the job completes, the trial's run directory is
 * copied from its bundle into the sweep directory, the worker's output appended to the trial's log,
 * and `exited` resolves with the exit the worker saw — so the scheduler records it exactly as a
 * local attempt. Completion is learnt from BullMQ's queue events and, in case one was missed (a
 * Redis restart), from a poll of the jobs followed.
 *
 * Once the scheduler has recorded a finished job (it does so synchronously when `exited`
 * resolves), the job is removed: a job that is there is always news — waiting, running, or a
 * result not yet recorded (the sweep process was down when it finished) — and the next attempt of
 * the trial (an ASHA promotion, an interrupted trial's resume) is a new job that resumes from the
 * bundle, which stays. A job BullMQ failed (a worker error, retried 3 times) is recorded as a
 * failed trial with its reason.
 */
import { appendFileSync } from 'node:fs';
import { basename } from 'node:path';
import { type Job, Queue, QueueEvents } from 'bullmq';
import type { RxtrainEvent } from '../pipeline/events.js';
import type { AttemptRequest, TrialAttempt, TrialLauncher } from '../sweep/trialLauncher.js';
import type { TrialExit } from '../sweep/trialProcess.js';
import { loadBundle } from './bundleStore.js';
import { bullConnection, redisClient } from './connection.js';
import { jobIdOf, keysOf, SWEEP_REGISTRY, trialOfJob } from './queueKeys.js';
import type { RedisTarget } from './redisUrl.js';
import { unpackRunDir } from './runBundle.js';
import { followTrialEvents } from './trialEventStream.js';
import { type TrialJobData, TrialJobResult } from './trialJob.js';

export interface RemoteLauncher extends TrialLauncher {
  /** Stop following; `finished`: the sweep is over, so workers need not watch its queue. */
  close(finished: boolean): Promise<void>;
}

interface Followed {
  request: AttemptRequest;
  settle: (exit: TrialExit) => void;
  done: boolean;
}

export async function openRemoteLauncher(o: {
  target: RedisTarget;
  queue: string;
  base: { file: string; text: string };
  pollMs?: number;
  /** Infrastructure trouble worth a line (a job that cannot be added, a bundle that cannot be read). */
  onWarning: (message: string) => void;
}): Promise<RemoteLauncher> {
  const connection = bullConnection(o.target);
  const queue = new Queue<TrialJobData, unknown, string>(o.queue, {
    connection,
    defaultJobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 1000 } },
  });
  queue.on('error', () => {}); // connection errors while Redis is away: retried by the client
  const events = new QueueEvents(o.queue, { connection });
  events.on('error', () => {});
  const redis = redisClient(o.target, `rxtrain-sweep:${o.queue}`);
  const reader = redisClient(o.target, `rxtrain-sweep-events:${o.queue}`);
  const keys = keysOf(o.queue);
  const followed = new Map<string, Followed>();
  /** Finished jobs being removed, by trial. */
  const removals = new Map<string, Promise<unknown>>();
  const stop = new AbortController();

  await redis.sadd(SWEEP_REGISTRY, o.queue);
  const following = followTrialEvents(
    reader,
    o.queue,
    (trial, event: RxtrainEvent) => {
      const f = followed.get(trial);
      if (f && !f.done) f.request.onEvent(event);
    },
    stop.signal,
  );

  /** Look at the trial's job: record its end if it has one. */
  async function check(trial: string): Promise<void> {
    const f = followed.get(trial);
    if (!f || f.done) return;
    const job = await queue.getJob(jobIdOf(trial));
    // Not there (yet, or any more): add it — adding is idempotent, so a race does no harm.
    if (!job) return void (await enqueue(f.request));
    const state = await job.getState();
    if (state !== 'completed' && state !== 'failed') return;
    // The job may have ended between reading it and reading its state: its return value (or
    // reason) is only in a copy read after the state said so.
    const ended = (await queue.getJob(jobIdOf(trial))) ?? job;
    if (state === 'completed') await finish(f, ended);
    else
      finishWith(
        f,
        { code: 1, signal: null },
        `rxtrain: E_QUEUE: job failed on a worker: ${ended.failedReason}\n`,
        ended,
      );
  }

  async function finish(f: Followed, job: Job): Promise<void> {
    const parsed = TrialJobResult.safeParse(job.returnvalue);
    if (!parsed.success) {
      finishWith(f, { code: 1, signal: null }, `rxtrain: E_QUEUE: job ${job.id} returned no trial result\n`);
      return;
    }
    const result = parsed.data;
    const bundle = await loadBundle(redis, o.queue, f.request.trial.id);
    if (f.done) return;
    if (bundle) unpackRunDir(bundle, f.request.dir);
    const exit = { code: result.code, signal: result.signal as NodeJS.Signals | null, wallMs: result.wallMs };
    finishWith(f, exit, result.log, job);
  }

  /** Hand the attempt's end to the scheduler; a finished job goes once that is recorded. */
  function finishWith(f: Followed, exit: TrialExit, log: string, job?: Job): void {
    if (f.done) return;
    f.done = true;
    if (log) appendFileSync(f.request.logFile, log.endsWith('\n') ? log : `${log}\n`);
    followed.delete(f.request.trial.id);
    f.settle(exit);
    // The scheduler records the attempt in the continuation of `await exited`, before any timer;
    // the trial's next attempt (a promotion may follow at once) waits for the removal.
    if (job)
      removals.set(
        f.request.trial.id,
        new Promise((resolve) => setImmediate(resolve)).then(() => job.remove()).catch(() => {}),
      );
  }

  /** A job no worker has taken yet is simply removed (--fail-fast): the trial is interrupted. */
  async function withdraw(f: Followed): Promise<void> {
    const job = await queue.getJob(jobIdOf(f.request.trial.id));
    if (!job || !['waiting', 'prioritized', 'delayed'].includes(await job.getState())) return;
    // BullMQ refuses to remove a job a worker has locked meanwhile: then the stop request holds.
    await job.remove();
    finishWith(f, { code: null, signal: 'SIGTERM' }, '');
  }

  async function enqueue(request: AttemptRequest): Promise<void> {
    const t = request.trial;
    const id = jobIdOf(t.id);
    await removals.get(t.id);
    removals.delete(t.id);
    // A new attempt: an old stop request (ASHA's before a promotion, or --fail-fast's) no longer
    // holds, not even for a job that is still there.
    await redis.del(keys.stop(t.id));
    if (await queue.getJob(id)) return; // waiting, running somewhere, or a result to collect
    const data: TrialJobData = {
      queue: o.queue,
      trial: t.id,
      base: { name: basename(o.base.file), text: o.base.text },
      overrides: t.overrides,
    };
    await queue.add('trial', data, { jobId: id });
  }

  events.on('completed', ({ jobId }) => void check(trialOfJob(jobId)).catch(() => {}));
  events.on('failed', ({ jobId }) => void check(trialOfJob(jobId)).catch(() => {}));
  const poll = setInterval(() => {
    for (const trial of followed.keys()) void check(trial).catch(() => {});
  }, o.pollMs ?? 2000);

  return {
    detachOnSignal: true,
    parallelFromStart: true,
    start(request): TrialAttempt {
      let settle!: (exit: TrialExit) => void;
      const exited = new Promise<TrialExit>((resolve) => {
        settle = resolve;
      });
      const f: Followed = { request, settle, done: false };
      followed.set(request.trial.id, f);
      enqueue(request)
        .then(() => check(request.trial.id))
        .catch((error: Error) => {
          o.onWarning(`trial ${request.trial.id}: ${error.message}; retrying`);
        });
      return {
        pid: 0,
        exited,
        kill: () => {
          // ASHA's rung (it was recorded just before the stop), or -1 for --fail-fast. The key
          // stays for a worker that takes the job later; the message reaches the one running it now.
          const rung = String(request.trial.rungs.at(-1)?.rung ?? -1);
          redis
            .set(keys.stop(request.trial.id), rung)
            .then(() => redis.publish(keys.stopChannel, request.trial.id))
            .then(() => withdraw(f))
            .catch(() => {});
        },
        detach: () => finishWith(f, { code: null, signal: null }, ''),
      };
    },
    async close(finished) {
      clearInterval(poll);
      stop.abort();
      if (finished) await redis.srem(SWEEP_REGISTRY, o.queue).catch(() => {});
      await following.catch(() => {});
      await Promise.allSettled([queue.close(), events.close()]);
      redis.disconnect();
      reader.disconnect();
    },
  };
}
