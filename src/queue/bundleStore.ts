/**
 * Run bundles (runBundle.ts) in Redis, one string per trial, overwritten by each newer checkpoint.
 * A worker writes only while it holds the job's BullMQ lock (checked in the same Lua script, so
 * atomically): a worker that lost its lock — stalled, its job taken over by another — cannot
 * overwrite the newer checkpoints of the one that has it now.
 *
 * A Redis string holds at most 512 MB (proto-max-bulk-len), and each write sends the whole bundle;
 * rxtrain refuses bundles over `MAX_BUNDLE_BYTES` (docs/sweeps.md says what to do beyond).
 */
import type { Redis } from 'ioredis';
import { RxtrainError } from '../util/errors.js';
import { keysOf } from './queueKeys.js';

export const MAX_BUNDLE_BYTES = 256 * 1024 * 1024;

const FENCED_SET = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0`;

/** Store the bundle if `token` still holds the job's lock; false when it does not. */
export async function saveBundle(
  redis: Redis,
  queue: string,
  job: { id: string; token: string },
  trial: string,
  bytes: Buffer,
): Promise<boolean> {
  if (bytes.byteLength > MAX_BUNDLE_BYTES)
    throw new RxtrainError(
      'E_QUEUE',
      `trial ${trial}: its run directory is ${(bytes.byteLength / 2 ** 20).toFixed(0)} MB, over the ${MAX_BUNDLE_BYTES / 2 ** 20} MB a queued trial may carry through Redis (docs/sweeps.md)`,
    );
  const keys = keysOf(queue);
  const written = await redis.eval(FENCED_SET, 2, keys.lock(job.id), keys.bundle(trial), job.token, bytes);
  return written === 1;
}

export async function loadBundle(redis: Redis, queue: string, trial: string): Promise<Buffer | null> {
  return redis.getBuffer(keysOf(queue).bundle(trial));
}
