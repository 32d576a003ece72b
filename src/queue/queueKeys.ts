/**
 * Names in Redis. Each sweep has its own BullMQ queue, named after the sweep and a hash of where
 * and when it was created, so `sweep resume` finds its jobs again and two sweeps never share one;
 * active sweeps are listed in one set that workers watch. A trial's job id is its trial id (BullMQ
 * takes ids as given, so enqueuing a trial twice adds nothing) with a `trial-` prefix: BullMQ
 * refuses ids that read as whole numbers, as a hex id now and then does.
 *
 *   rxtrain:sweeps                      set of active sweep queue names
 *   bull:<queue>:…                      BullMQ's own keys (jobs, locks, events)
 *   rxtrain:<queue>:bundle:<trial>      the trial's run directory at its last checkpoint or end
 *   rxtrain:<queue>:stop:<trial>        a request to stop the trial (ASHA's rung, or -1)
 *   rxtrain:<queue>:stop                channel: the id of a trial whose stop request was written
 *   rxtrain:<queue>:events              stream of the trials' events, for progress and ASHA
 */
import { createHash } from 'node:crypto';

export const SWEEP_REGISTRY = 'rxtrain:sweeps';
/** BullMQ's default key prefix, used as is (its lock keys are read to fence bundle writes). */
export const BULL_PREFIX = 'bull';

export function queueNameOf(sweep: { name: string; created: string }, sweepDir: string): string {
  const hash = createHash('sha256').update(`${sweepDir}\n${sweep.created}`).digest('hex').slice(0, 8);
  return `rxtrain.${sweep.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.${hash}`;
}

export function jobIdOf(trial: string): string {
  return `trial-${trial}`;
}

export function trialOfJob(jobId: string): string {
  return jobId.replace(/^trial-/, '');
}

export function keysOf(queue: string) {
  const own = `rxtrain:${queue}`;
  return {
    bundle: (trial: string) => `${own}:bundle:${trial}`,
    stop: (trial: string) => `${own}:stop:${trial}`,
    stopChannel: `${own}:stop`,
    events: `${own}:events`,
    /** The lock BullMQ holds on an active job (its value is the holding worker's token). */
    lock: (jobId: string) => `${BULL_PREFIX}:${queue}:${jobId}:lock`,
  };
}
