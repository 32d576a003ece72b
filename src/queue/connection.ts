/**
 * Connections to Redis, set up as BullMQ's production guide asks: `maxRetriesPerRequest: null`, so
 * a command waits through a Redis restart instead of failing, and a retry strategy that reconnects
 * within a couple of seconds (BullMQ's own backs off to 20 s). Before any of that, `probeRedis`
 * connects once without retrying: an unreachable Redis at start is one error line naming the URL,
 * not a process that waits forever. It also reads the server's version (BullMQ needs ≥ 5) and its
 * eviction policy: anything but `noeviction` lets Redis drop queue keys under memory pressure — jobs
 * and checkpoints lost without a trace — so it is warned about.
 */
import type { RedisOptions as BullRedisOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { deferredTrust } from '../util/caCertificates.js';
import { RxtrainError } from '../util/errors.js';
import type { RedisTarget } from './redisUrl.js';

/** Reconnect after 0.2 s, 0.4 s, … at most 2 s apart, forever. */
const reconnectDelay = (times: number) => Math.min(times * 200, 2000);

export function redisOptions(target: RedisTarget): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    // NODE_EXTRA_CA_CERTS, when bin/rxtrain.js put it off until now (util/caCertificates.ts).
    ...(target.tls ? { tls: deferredTrust() } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
  };
}

/** The same settings, as BullMQ's Queue, QueueEvents and Worker take them (each opens its own). */
export function bullConnection(target: RedisTarget): BullRedisOptions {
  const { tls, ...options } = redisOptions(target);
  return { ...options, ...(tls ? { tls } : {}) } as BullRedisOptions;
}

/** A client for rxtrain's own keys (bundles, stop requests, the event stream). */
export function redisClient(target: RedisTarget, name: string): Redis {
  const client = new Redis({ ...redisOptions(target), connectionName: name });
  // Errors while Redis is away are retried by the client; without a listener they would crash us.
  client.on('error', () => {});
  return client;
}

export interface RedisProbe {
  version: string;
  /** One line each, for the user: a setting that loses data. */
  warnings: string[];
}

export async function probeRedis(target: RedisTarget, timeoutMs = 5000): Promise<RedisProbe> {
  const client = new Redis({
    ...redisOptions(target),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // connect() rejects with "Connection is closed"; the reason came with the 'error' event before.
  let reason: NodeJS.ErrnoException | undefined;
  client.on('error', (error: NodeJS.ErrnoException) => {
    reason ??= error;
  });
  try {
    try {
      await client.connect();
    } catch (error) {
      const e = reason ?? (error as NodeJS.ErrnoException);
      throw new RxtrainError('E_QUEUE', `${target.shown}: cannot connect to Redis (${e.code ?? e.message})`);
    }
    const info = await client.info();
    const field = (name: string) => info.match(new RegExp(`^${name}:(.*)$`, 'm'))?.[1]?.trim();
    const version = field('redis_version') ?? field('valkey_version') ?? '0';
    if (Number(version.split('.')[0]) < 5)
      throw new RxtrainError('E_QUEUE', `${target.shown}: Redis ${version}; BullMQ needs Redis 5 or newer`);
    const policy = field('maxmemory_policy');
    const warnings =
      policy && policy !== 'noeviction'
        ? [
            `${target.shown}: maxmemory-policy is ${policy}; set it to noeviction (redis-cli config set maxmemory-policy noeviction), or Redis may evict queued trials and their checkpoints`,
          ]
        : [];
    return { version, warnings };
  } finally {
    client.disconnect();
  }
}
