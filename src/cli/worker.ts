import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '../pipeline/run.js';
import { runQueueWorker } from '../queue/queueWorker.js';
import { parseRedisUrl } from '../queue/redisUrl.js';
import { RxtrainError } from '../util/errors.js';
import type { Command } from './command.js';

/** bin/rxtrain.js, from dist/src/cli/: how each trial process is started. */
const BIN = fileURLToPath(new URL('../../../bin/rxtrain.js', import.meta.url));

export const workerCommand: Command = {
  name: 'worker',
  help: `Usage: rxtrain worker --queue redis://HOST:PORT[/DB] [--concurrency N] [--work-dir DIR] [--cache DIR]

Takes trials of sweeps started with \`rxtrain sweep … --queue\` on the same Redis, on any machine
(see docs/sweeps.md). Each trial runs as its own rxtrain process in <work-dir>; its checkpoints and
results travel through Redis, so a trial this worker does not finish is resumed by another from its
last checkpoint. SIGTERM or SIGINT: the running trials checkpoint and are handed back, then the
worker exits 143/130.

  --queue URL          the Redis server the sweeps use (required)
  --concurrency N      trials at once, per sweep (default 1)
  --work-dir DIR       where trials run (default ./rxtrain-worker)
  --cache DIR          download and stage cache of this worker's trials (default $RXTRAIN_CACHE or ~/.cache/rxtrain)
  --lock-duration MS   how long a job stays locked without renewal: a killed worker's trial is
                       resumed elsewhere about this long after (default 30000)
  --quiet              no log lines on stderr

Exit codes: 1 Redis unreachable at start, 2 usage error, 130/143 stopped by SIGINT/SIGTERM.`,
  options: {
    queue: { type: 'string' },
    concurrency: { type: 'string', short: 'j' },
    'work-dir': { type: 'string' },
    cache: { type: 'string' },
    'lock-duration': { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    if (positionals.length > 0 || typeof values.queue !== 'string')
      throw new RxtrainError('E_USAGE', 'usage: rxtrain worker --queue redis://HOST:PORT[/DB] [options]');
    const whole = (name: string, fallback: number, min: number) => {
      const text = values[name];
      if (text === undefined) return fallback;
      const n = Number(text);
      if (!Number.isInteger(n) || n < min)
        throw new RxtrainError('E_USAGE', `--${name}: expected a whole number ≥ ${min}, got "${text}"`);
      return n;
    };
    return runQueueWorker({
      target: parseRedisUrl(values.queue),
      concurrency: whole('concurrency', 1, 1),
      lockDurationMs: whole('lock-duration', 30_000, 1000),
      workDir: resolve((values['work-dir'] as string | undefined) ?? 'rxtrain-worker'),
      cacheDir: resolve((values.cache as string | undefined) ?? defaultCacheDir()),
      command: [process.execPath, ...process.execArgv, BIN],
      env: io.env,
      signal: io.signal,
      say: values.quiet ? () => {} : (line) => io.stderr(`rxtrain worker: ${line}\n`),
    });
  },
};
