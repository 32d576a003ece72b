/**
 * Sweeps across machines (src/queue/): `rxtrain sweep --queue` and `rxtrain worker` processes on a
 * real redis-server started for each test (test/helpers/redis.ts). Trials are held mid-run by
 * test/helpers/holdTraining.ts where a test needs one caught after its first checkpoint, so nothing
 * here depends on timing: every wait is for a state, an event or a file.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/pipeline/config.js';
import { type RunSummary, runExperiment } from '../src/pipeline/run.js';
import { probeRedis } from '../src/queue/connection.js';
import { parseRedisUrl } from '../src/queue/redisUrl.js';
import { builtinStages } from '../src/stages/index.js';
import type { SweepSummary } from '../src/sweep/sweepSummary.js';
import { BIN, runCli, tempDir } from './helpers/index.js';
import { attemptsOf, hasBundle, holdEnv, startWorker, type TestWorker, waitUntil } from './helpers/queue.js';
import { hasRedis, startRedis, type TestRedis } from './helpers/redis.js';
import { slowCheckpointWrites } from './helpers/resume.js';
import { readState, sweepEvents, tinyBase, tinyData, trialEvents, writeSweep } from './helpers/sweep.js';

const root = tempDir('rxtrain-queue-');
const data = tinyData(join(root, 'data'));
const serial = hasRedis ? test.serial : test.skip;

async function sweepFile(name: string, lrs: number[], steps = 300): Promise<string> {
  return writeSweep(root, name, {
    base: tinyBase(await data, steps),
    parameters: { 'sgd.lr': { values: lrs } },
  });
}

const summaryOf = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'sweep-summary.json'), 'utf8')) as SweepSummary;
const runSummaryOf = (dir: string, id: string) =>
  JSON.parse(readFileSync(join(dir, 'trials', id, 'summary.json'), 'utf8')) as RunSummary;

/** What must match between two sweeps of the same file: per trial, its id, status, metric, steps, weights. */
const outcomes = (s: SweepSummary) =>
  s.trials.map((x) => ({
    id: x.id,
    status: x.status,
    metric: x.metric,
    steps: x.steps,
    weights: x.weightsSha256,
  }));

/** A trial's config run in-process, uninterrupted and outside any sweep: its weights' sha256. */
async function plainRun(sweepDir: string, overrides: string[]): Promise<string> {
  const config = await loadConfig(join(sweepDir, 'base.yaml'), { stages: builtinStages, overrides });
  const summary = await runExperiment({
    config,
    runDir: join(tempDir(), 'run'),
    cacheDir: join(root, 'cache-plain'),
  });
  return summary.weightsSha256!;
}

function queueSweep(file: string, dir: string, url: string) {
  return runCli(
    ['sweep', file, '--sweep-dir', dir, '--queue', url, '--cache', join(root, 'cache-sweep'), '--quiet'],
    {
      timeoutMs: 150_000,
    },
  );
}

/** Each test its own Redis and workers, all stopped at its end. */
async function setUp(t: ExecutionContext): Promise<{ redis: TestRedis; workers: TestWorker[] }> {
  const redis = await startRedis();
  const workers: TestWorker[] = [];
  t.teardown(async () => {
    for (const w of workers) w.killGroup();
    await redis.stop();
  });
  return { redis, workers };
}

/** The trial a worker is running: the one whose run directory is in its work dir. */
function trialsIn(worker: TestWorker, ids: string[]): string[] {
  return ids.filter((id) => attemptsOf(worker).some((a) => a.trial === id));
}

serial(
  'a sweep across 3 workers, its sweep process SIGKILLed after enqueuing and resumed: every trial runs once, and the summary equals a local --parallel sweep',
  async (t) => {
    const { redis, workers } = await setUp(t);
    const file = await sweepFile('three', [0.05, 0.1, 0.2]);
    const dir = join(root, 'three');
    // No worker yet: the sweep enqueues every trial, then is killed while they wait.
    const first = spawn(
      process.execPath,
      [BIN, 'sweep', file, '--sweep-dir', dir, '--queue', redis.url, '--quiet'],
      {
        stdio: 'ignore',
      },
    );
    await waitUntil(
      'three trials enqueued',
      () => readState(dir)?.trials.every((x) => x.status === 'running') ?? false,
    );
    first.kill('SIGKILL');
    for (const name of ['a', 'b', 'c']) workers.push(startWorker(root, name, redis.url));
    // Enqueued again by the resumed sweep (on the queue sweep.json recorded, no --queue needed): the
    // jobs already there are followed, none is added twice.
    t.is(readState(dir)!.queue, redis.url);
    const resumed = await runCli(['sweep', 'resume', dir, '--cache', join(root, 'cache-sweep'), '--quiet'], {
      timeoutMs: 150_000,
    });
    t.is(resumed.code, 0, resumed.stderr);
    t.regex(resumed.stdout, /^completed sweep three: 3 trials \(3 done\)/);

    const ids = readState(dir)!.trials.map((x) => x.id);
    const attempts = workers.flatMap(attemptsOf);
    t.deepEqual(
      attempts.map((a) => a.trial).sort(),
      [...ids].sort(),
      'each trial taken by a worker exactly once',
    );
    t.true(attempts.every((a) => a.action === 'run'));
    for (const id of ids) {
      const finished = trialEvents(dir, id).filter((e) => e.type === 'run-finished');
      t.is(finished.length, 1, `${id}: one run-finished, copied into the sweep directory`);
    }

    const local = join(root, 'three-local');
    const plain = await runCli(
      [
        'sweep',
        file,
        '--sweep-dir',
        local,
        '--cache',
        join(root, 'cache-local'),
        '--parallel',
        '2',
        '--quiet',
      ],
      { timeoutMs: 150_000 },
    );
    t.is(plain.code, 0, plain.stderr);
    t.deepEqual(outcomes(summaryOf(dir)), outcomes(summaryOf(local)));
    t.deepEqual(summaryOf(dir).best, {
      ...summaryOf(local).best!,
      runDir: join(dir, 'trials', summaryOf(local).best!.trial),
    });
  },
);

/** A one-trial sweep whose trial is held on one of two workers after its first checkpoint was uploaded. */
async function heldTrial(t: ExecutionContext, name: string) {
  const { redis, workers } = await setUp(t);
  const release = join(root, `${name}.release`);
  for (const w of ['a', 'b']) workers.push(startWorker(root, `${name}-${w}`, redis.url, holdEnv(release)));
  // 3,000 steps: a run takes a signal when it yields to the event loop, every 25 ms of training,
  // and on this tiny data hundreds of steps fit in 25 ms; a 300-step trial released at step 200
  // could finish before its SIGTERM is taken (it then exits 0, not 143).
  const file = await sweepFile(name, [0.1], 3000);
  const dir = join(root, name);
  const sweep = queueSweep(file, dir, redis.url);
  await waitUntil('the trial enqueued', () => readState(dir)?.trials[0]?.status === 'running');
  const id = readState(dir)!.trials[0]!.id;
  await waitUntil('the trial held mid-run', () => existsSync(`${release}.held`));
  await waitUntil('its checkpoint uploaded', () => hasBundle(redis.url, dir, id));
  const holder = workers.find((w) => trialsIn(w, [id]).length > 0)!;
  const other = workers.find((w) => w !== holder)!;
  return { redis, release, dir, id, sweep, holder, other };
}

serial(
  'a SIGKILLed worker: its trial is taken for stalled and resumed on another from its last checkpoint, with the weights of an uninterrupted run',
  async (t) => {
    const { release, dir, id, sweep, holder, other } = await heldTrial(t, 'killed');
    holder.killGroup();
    const killed = Date.now();
    writeFileSync(release, ''); // the resumed trial is not held again
    await waitUntil('the other worker resumes it', () => attemptsOf(other).some((a) => a.trial === id));
    t.log(
      `resumed on the other worker ${((Date.now() - killed) / 1000).toFixed(1)} s after the kill (lock 3 s)`,
    );
    const result = await sweep;
    t.is(result.code, 0, result.stderr);
    t.deepEqual(attemptsOf(other), [{ trial: id, action: 'resume' }]);
    const summary = runSummaryOf(dir, id);
    t.true((summary.resumedFrom ?? 0) >= 100, 'resumed from the uploaded checkpoint');
    t.is(summary.weightsSha256, await plainRun(dir, readState(dir)!.trials[0]!.overrides));
    t.is(readState(dir)!.trials[0]!.status, 'done');
  },
);

serial(
  'SIGTERM to a worker: its trial checkpoints and is handed back, the worker exits 143, another finishes it',
  async (t) => {
    const { release, dir, id, sweep, holder, other } = await heldTrial(t, 'termed');
    holder.kill('SIGTERM');
    // The worker passes SIGTERM on to the held trial as it logs this line; only then is the trial let
    // go (it takes the signal once it is no longer held), or it could finish before the signal came.
    await waitUntil('the worker to pass SIGTERM on', () => /SIGTERM: stopping 1 trial/.test(holder.output()));
    writeFileSync(release, '');
    const exit = await holder.exited;
    t.is(exit.code, 143, holder.output());
    t.regex(holder.output(), new RegExp(`trial ${id}: checkpointed and handed back`));
    const result = await sweep;
    t.is(result.code, 0, result.stderr);
    t.deepEqual(attemptsOf(other), [{ trial: id, action: 'resume' }]);
    t.is(runSummaryOf(dir, id).weightsSha256, await plainRun(dir, readState(dir)!.trials[0]!.overrides));
  },
);

serial(
  'redis-server restarted mid-sweep (AOF): workers and the sweep reconnect, every trial done exactly once',
  async (t) => {
    const { redis, workers } = await setUp(t);
    const release = join(root, 'restart.release');
    for (const w of ['a', 'b']) workers.push(startWorker(root, `restart-${w}`, redis.url, holdEnv(release)));
    const file = await sweepFile('restart', [0.05, 0.1, 0.2]);
    const dir = join(root, 'restart');
    const sweep = queueSweep(file, dir, redis.url);
    await waitUntil('a trial held mid-run', () => existsSync(`${release}.held`));
    await redis.kill('SIGTERM');
    await redis.restart();
    writeFileSync(release, '');
    const result = await sweep;
    t.is(result.code, 0, result.stderr);
    const state = readState(dir)!;
    t.deepEqual(
      state.trials.map((x) => x.status),
      ['done', 'done', 'done'],
    );
    const attempts = workers.flatMap(attemptsOf);
    t.deepEqual(
      attempts.map((a) => a.trial).sort(),
      state.trials.map((x) => x.id).sort(),
      'each trial run once',
    );
    for (const x of state.trials)
      t.is(
        trialEvents(dir, x.id).filter((e) => e.type === 'run-finished').length,
        1,
        `${x.id}: one run-finished`,
      );
  },
);

serial(
  'ASHA across workers: trials stopped at their rung on one worker, the best promoted and resumed from its uploaded checkpoint, trained to the end exactly',
  async (t) => {
    const { redis, workers } = await setUp(t);
    // Checkpoint writes pause 200 ms: a trial is still at its rung when the stop request reaches it.
    for (const w of ['a', 'b'])
      workers.push(startWorker(root, `asha-${w}`, redis.url, slowCheckpointWrites(200)));
    const file = writeSweep(root, 'asha', {
      base: tinyBase(await data, 400),
      parameters: { 'sgd.lr': { values: [0.1, 0.01, 0.001] } },
      scheduler: { type: 'asha', minResource: 100, reductionFactor: 3 },
    });
    const dir = join(root, 'asha');
    const result = await runCli(
      ['sweep', file, '--sweep-dir', dir, '--queue', redis.url, '--parallel', '1', '--quiet'],
      {
        timeoutMs: 150_000,
      },
    );
    t.is(result.code, 0, result.stderr);
    const state = readState(dir)!;
    const [best, middle, worst] = state.trials;
    t.deepEqual(
      state.trials.map((x) => [x.params['sgd.lr'], x.status, x.attempts]),
      [
        [0.1, 'done', 2],
        [0.01, 'stopped-early', 1],
        [0.001, 'stopped-early', 1],
      ],
    );
    t.deepEqual(
      sweepEvents(dir).flatMap((e) =>
        e.type === 'trial-rung' ? [`${e.trial} ${e.rung} ${e.decision}`] : [],
      ),
      [`${best!.id} 0 stop`, `${middle!.id} 0 stop`, `${worst!.id} 0 stop`, `${best!.id} 1 continue`],
    );
    for (const trial of [middle!, worst!])
      t.true(trial.steps! >= 100 && trial.steps! < 400, `${trial.id} stopped at ${trial.steps}`);
    const attempts = workers.flatMap(attemptsOf);
    t.deepEqual(
      attempts.filter((a) => a.action === 'resume'),
      [{ trial: best!.id, action: 'resume' }],
    );
    t.is(attempts.length, 4, 'three runs and one promotion');
    t.is(runSummaryOf(dir, best!.id).weightsSha256, await plainRun(dir, best!.overrides));
  },
);

serial(
  'an unreachable Redis is one line naming the URL, exit 1, for the sweep and for a worker',
  async (t) => {
    const { redis } = await setUp(t);
    await redis.kill('SIGKILL'); // its port, now closed
    const file = await sweepFile('unreachable', [0.1]);
    const sweep = await queueSweep(file, join(root, 'unreachable'), redis.url);
    t.is(sweep.code, 1);
    t.is(sweep.stderr, `rxtrain: E_QUEUE: ${redis.url}: cannot connect to Redis (ECONNREFUSED)\n`);
    t.false(existsSync(join(root, 'unreachable')), 'no sweep directory was made');
    const worker = await runCli(['worker', '--queue', `${redis.url}/3`]);
    t.is(worker.code, 1);
    t.is(worker.stderr, `rxtrain: E_QUEUE: ${redis.url}/3: cannot connect to Redis (ECONNREFUSED)\n`);
    const bad = await runCli(['worker', '--queue', 'http://localhost:6379']);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /^rxtrain: E_USAGE: --queue "http:\/\/localhost:6379": unsupported scheme http: /);
  },
);

serial('a Redis that may evict keys is warned about (BullMQ needs noeviction)', async (t) => {
  const { redis } = await setUp(t);
  const target = parseRedisUrl(redis.url);
  t.deepEqual((await probeRedis(target)).warnings, []);
  const client = new Redis(redis.url);
  await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
  client.disconnect();
  const { warnings } = await probeRedis(target);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /maxmemory-policy is allkeys-lru; set it to noeviction/);
});
