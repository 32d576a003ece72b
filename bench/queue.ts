/**
 * bench:queue — the figures issue 15 asks for, with the real CLI, real `rxtrain worker` processes
 * and a real redis-server (started here on a free port, AOF on), on the real MNIST:
 *
 *   equal       a 30-trial grid over the default experiment (1 epoch each) on 3 workers with their
 *               own work dirs and caches, against the same sweep run locally with --parallel 2:
 *               trials taken per worker, each trial taken exactly once, one `run-finished` per
 *               trial, and the summaries compared (ids, statuses, metrics, weightsSha256)
 *   kill        a one-trial sweep (3 epochs, a checkpoint every 200 steps) on 2 workers with the
 *               default 30 s lock: the worker running it SIGKILLed (its process group) once its
 *               first checkpoint is in Redis; seconds until the other worker takes the job and until
 *               the trial trains again; its weightsSha256 against a plain `rxtrain run`
 *   restart     a 12-trial sweep on 3 workers; redis-server SIGKILLed (appendfsync always) once 3
 *               trials are done, restarted 1 s later: the sweep's exit, each trial taken once
 *   throughput  the first 12 trials with 1, 2 and 3 workers: trials per minute (wall time of the
 *               sweep process, workers already up)
 *   overhead    6 trials on 1 idle worker with --parallel 1 (one job queued at a time), read from
 *               BullMQ's event stream: enqueue → job active on the worker, and job completed →
 *               the sweep's `trial-finished`
 *
 * Usage: npm run bench:queue -- [--only equal,kill,restart,throughput,overhead] [--dir DIR]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { parseEvents } from '../src/pipeline/events.js';
import { queueNameOf } from '../src/queue/queueKeys.js';
import { parseSweepEvents } from '../src/sweep/sweepEvents.js';
import type { SweepState } from '../src/sweep/sweepState.js';
import type { SweepSummary } from '../src/sweep/sweepSummary.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/rxtrain.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const state = (dir: string) => readJson<SweepState>(join(dir, 'sweep.json'));
const summary = (dir: string) => readJson<SweepSummary>(join(dir, 'sweep-summary.json'));

function cli(
  args: string[],
): Promise<{ code: number | null; seconds: number; stdout: string; stderr: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((done) =>
    child.once('close', (code) =>
      done({ code, seconds: (performance.now() - started) / 1000, stdout, stderr }),
    ),
  );
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => done(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** redis-server in `dir` on `port`; resolves once it answers. */
async function redisServer(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    '/usr/bin/redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  );
  for (;;) {
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    const up = await probe
      .connect()
      .then(() => probe.ping())
      .then(() => true)
      .catch(() => false);
    probe.disconnect();
    if (up) break;
    await sleep(50);
  }
  return child;
}

interface BenchWorker {
  name: string;
  output: () => string;
  /** When each line was seen. */
  lines: { at: number; text: string }[];
  killGroup(): void;
  stop(): Promise<void>;
}

function worker(out: string, name: string, url: string, extra: string[] = []): BenchWorker {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'worker',
      '--queue',
      url,
      '--work-dir',
      join(out, `work-${name}`),
      '--cache',
      join(out, `cache-${name}`),
      ...extra,
    ],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let text = '';
  const lines: { at: number; text: string }[] = [];
  child.stderr!.on('data', (d) => {
    text += d;
    for (const l of String(d).split('\n').filter(Boolean)) lines.push({ at: Date.now(), text: l });
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return {
    name,
    output: () => text,
    lines,
    killGroup: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const taken = (ws: BenchWorker[]) =>
  ws.flatMap((w) =>
    [...w.output().matchAll(/trial (\w+): (run|resume) \(job/g)].map((m) => `${m[1]} ${m[2]}`),
  );

function writeSweepFile(
  out: string,
  name: string,
  parameters: Record<string, unknown>,
  fixed: Record<string, unknown>,
) {
  const file = join(out, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      name,
      base: join(ROOT, 'config/mnist-logreg.yaml'),
      fixed: { 'shuffle.holdout': { size: 10000 }, 'evaluate.splits': ['val', 'test'], ...fixed },
      metric: 'val.accuracy',
      method: 'grid',
      parameters,
    }),
  );
  return file;
}

const GRID30 = {
  'sgd.lr': { values: [0.03, 0.1, 0.3, 1, 3] },
  'sgd.batchSize': { values: [32, 64, 128] },
  'sgd.schedule': { values: ['constant', 'cosine'] },
};
const GRID12 = { 'sgd.lr': { values: [0.03, 0.1, 0.3, 1] }, 'sgd.batchSize': { values: [32, 64, 128] } };
const ONE_EPOCH = { 'sgd.epochs': 1, 'evaluate.every': 400 };

function countFinished(dir: string): number[] {
  return state(dir).trials.map(
    (t) =>
      parseEvents(readFileSync(join(dir, 'trials', t.id, 'events.ndjson'), 'utf8')).filter(
        (e) => e.type === 'run-finished',
      ).length,
  );
}

const outcome = (s: SweepSummary) =>
  s.trials.map((t) => `${t.id} ${t.status} ${t.metric} ${t.steps} ${t.weightsSha256}`).join('\n');

async function equal(out: string, url: string) {
  const file = writeSweepFile(out, 'thirty', GRID30, ONE_EPOCH);
  const local = await cli([
    'sweep',
    file,
    '--sweep-dir',
    join(out, 'thirty-local'),
    '--cache',
    join(out, 'cache-local'),
    '--parallel',
    '2',
    '--quiet',
  ]);
  const ws = ['a', 'b', 'c'].map((n) => worker(out, `eq-${n}`, url));
  const queued = await cli([
    'sweep',
    file,
    '--sweep-dir',
    join(out, 'thirty-queue'),
    '--queue',
    url,
    '--cache',
    join(out, 'cache-sweep'),
    '--quiet',
  ]);
  await Promise.all(ws.map((w) => w.stop()));
  const attempts = taken(ws);
  const ids = state(join(out, 'thirty-queue')).trials.map((t) => t.id);
  return {
    localExit: local.code,
    localSeconds: +local.seconds.toFixed(1),
    queueExit: queued.code,
    queueSeconds: +queued.seconds.toFixed(1),
    trials: ids.length,
    takenPerWorker: ws.map((w) => taken([w]).length),
    everyTrialTakenOnce: attempts.length === ids.length && ids.every((id) => attempts.includes(`${id} run`)),
    runFinishedPerTrial: [...new Set(countFinished(join(out, 'thirty-queue')))],
    summariesEqual:
      outcome(summary(join(out, 'thirty-local'))) === outcome(summary(join(out, 'thirty-queue'))),
    best: summary(join(out, 'thirty-queue')).best?.value,
  };
}

async function bundleHasCheckpoint(url: string, dir: string, trial: string): Promise<boolean> {
  const redis = new Redis(url);
  try {
    const s = state(dir);
    const bytes = await redis.getBuffer(`rxtrain:${queueNameOf(s, dir)}:bundle:${trial}`);
    return !!bytes && bytes.includes('ckpt-');
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function kill(out: string, url: string) {
  const file = writeSweepFile(
    out,
    'killed',
    { 'sgd.lr': { values: [0.3] } },
    { 'sgd.epochs': 3, 'checkpoint.every': 200 },
  );
  const dir = join(out, 'killed');
  const ws = ['a', 'b'].map((n) => worker(out, `kill-${n}`, url));
  const sweep = cli([
    'sweep',
    file,
    '--sweep-dir',
    dir,
    '--queue',
    url,
    '--cache',
    join(out, 'cache-sweep'),
    '--quiet',
  ]);
  let id = '';
  for (;;) {
    await sleep(100);
    try {
      id = state(dir).trials[0]!.id;
      if (await bundleHasCheckpoint(url, dir, id)) break;
    } catch {}
  }
  const holder = ws.find((w) => taken([w]).length > 0)!;
  const other = ws.find((w) => w !== holder)!;
  holder.killGroup();
  const killedAt = Date.now();
  const result = await sweep;
  const takenAt = other.lines.find((l) => l.text.includes(`trial ${id}: resume`))?.at;
  const events = parseEvents(readFileSync(join(dir, 'trials', id, 'events.ndjson'), 'utf8'));
  const resumed = events.find((e) => e.type === 'resumed');
  const plain = await cli([
    'run',
    state(dir).baseFile,
    ...state(dir).trials[0]!.overrides.flatMap((s) => ['--set', s]),
    '--run-dir',
    join(out, 'killed-plain'),
    '--cache',
    join(out, 'cache-local'),
    '--quiet',
  ]);
  await other.stop();
  const s = readJson<{ weightsSha256: string; resumedFrom?: number; steps: number }>(
    join(dir, 'trials', id, 'summary.json'),
  );
  const p = readJson<{ weightsSha256: string }>(join(out, 'killed-plain', 'summary.json'));
  return {
    sweepExit: result.code,
    plainExit: plain.code,
    lockDurationMs: 30_000,
    killToJobTakenSeconds: takenAt ? +((takenAt - killedAt) / 1000).toFixed(1) : null,
    killToTrainingResumedSeconds: resumed ? +((Date.parse(resumed.time) - killedAt) / 1000).toFixed(1) : null,
    resumedFromStep: s.resumedFrom,
    steps: s.steps,
    weightsEqualToUninterrupted: s.weightsSha256 === p.weightsSha256,
  };
}

async function restart(out: string, redisDir: string, port: number, current: { server: ChildProcess }) {
  const url = `redis://127.0.0.1:${port}`;
  const file = writeSweepFile(out, 'restart', GRID12, ONE_EPOCH);
  const dir = join(out, 'restart');
  const ws = ['a', 'b', 'c'].map((n) => worker(out, `restart-${n}`, url));
  const sweep = cli([
    'sweep',
    file,
    '--sweep-dir',
    dir,
    '--queue',
    url,
    '--cache',
    join(out, 'cache-sweep'),
    '--quiet',
  ]);
  for (;;) {
    await sleep(100);
    try {
      if (state(dir).trials.filter((t) => t.status === 'done').length >= 3) break;
    } catch {}
  }
  const running = state(dir).trials.filter((t) => t.status === 'running').length;
  current.server.kill('SIGKILL');
  await new Promise((r) => current.server.once('exit', r));
  await sleep(1000);
  current.server = await redisServer(redisDir, port);
  const result = await sweep;
  await Promise.all(ws.map((w) => w.stop()));
  const ids = state(dir).trials.map((t) => t.id);
  const attempts = taken(ws);
  return {
    sweepExit: result.code,
    killedWith: 'SIGKILL, restarted after 1 s (appendonly yes, appendfsync always)',
    trialsQueuedOrRunningAtKill: running,
    counts: summary(dir).counts,
    attemptsTaken: attempts.length,
    everyTrialTakenOnce: attempts.length === ids.length && ids.every((id) => attempts.includes(`${id} run`)),
    runFinishedPerTrial: [...new Set(countFinished(dir))],
  };
}

async function throughput(out: string, url: string) {
  const file = writeSweepFile(out, 'twelve', GRID12, ONE_EPOCH);
  const rows: { workers: number; seconds: number; trialsPerMinute: number; load: number }[] = [];
  // Each worker's cache warmed first (MNIST decoded), as on machines that have run a sweep before.
  for (let i = 0; i < 3; i++) {
    const warm = await cli([
      'run',
      join(ROOT, 'config/mnist-logreg.yaml'),
      '--set',
      'sgd.steps=1',
      '--run-dir',
      join(out, `warm-${i}`),
      '--cache',
      join(out, `cache-tp-${i}`),
      '--quiet',
    ]);
    if (warm.code !== 0) throw new Error(warm.stderr);
  }
  for (const n of [1, 2, 3]) {
    const ws = Array.from({ length: n }, (_, i) => worker(out, `tp-${i}`, url));
    const r = await cli(['sweep', file, '--sweep-dir', join(out, `twelve-${n}`), '--queue', url, '--quiet']);
    await Promise.all(ws.map((w) => w.stop()));
    if (r.code !== 0) throw new Error(r.stderr);
    rows.push({
      workers: n,
      seconds: +r.seconds.toFixed(1),
      trialsPerMinute: +((12 * 60) / r.seconds).toFixed(1),
      load: +loadavg()[0]!.toFixed(1),
    });
  }
  return rows;
}

async function overhead(out: string, url: string) {
  const file = writeSweepFile(
    out,
    'six',
    { 'sgd.lr': { values: [0.03, 0.1, 0.3, 1, 3, 10] } },
    { 'sgd.steps': 200 },
  );
  const dir = join(out, 'six');
  const w = worker(out, 'overhead', url);
  const r = await cli(['sweep', file, '--sweep-dir', dir, '--queue', url, '--parallel', '1', '--quiet']);
  await w.stop();
  if (r.code !== 0) throw new Error(r.stderr);
  // BullMQ's own event stream: entry ids are Redis's clock in ms.
  const redis = new Redis(url);
  const entries = (await redis.xrange(`bull:${queueNameOf(state(dir), dir)}:events`, '-', '+')) as [
    string,
    string[],
  ][];
  redis.disconnect();
  const at = (event: string, job: string) =>
    entries
      .filter(([, f]) => f[f.indexOf('event') + 1] === event && f[f.indexOf('jobId') + 1] === job)
      .map(([i]) => Number(i.split('-')[0]))[0];
  const finished = new Map(
    parseSweepEvents(readFileSync(join(dir, 'events.ndjson'), 'utf8')).flatMap((e) =>
      e.type === 'trial-finished' ? [[e.trial, Date.parse(e.time)] as const] : [],
    ),
  );
  const rows = state(dir).trials.map((t) => {
    const job = `trial-${t.id}`;
    const added = at('added', job) ?? at('waiting', job);
    return { start: at('active', job)! - added!, record: finished.get(t.id)! - at('completed', job)! };
  });
  const ms = (xs: number[]) => ({
    min: Math.min(...xs),
    median: [...xs].sort((a, b) => a - b)[xs.length >> 1],
    max: Math.max(...xs),
  });
  return {
    trials: rows.length,
    enqueueToActiveMs: ms(rows.map((r) => r.start)),
    completedToRecordedMs: ms(rows.map((r) => r.record)),
  };
}

const { values } = parseArgs({ options: { only: { type: 'string' }, dir: { type: 'string' } } });
const only = new Set((values.only ?? 'equal,kill,restart,throughput,overhead').split(','));
const out = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'rxtrain-bench-queue-'));
mkdirSync(out, { recursive: true });
const redisDir = join(out, 'redis');
mkdirSync(redisDir, { recursive: true });
const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
const current = { server: await redisServer(redisDir, port) };
const results: Record<string, unknown> = {
  machine: `${(await import('node:os')).cpus().length} CPUs`,
  loadBefore: loadavg().map((x) => +x.toFixed(1)),
};
try {
  // MNIST decoded once into the local caches, so the comparisons do not time a first decode.
  for (const section of ['equal', 'kill', 'restart', 'throughput', 'overhead'] as const) {
    if (!only.has(section)) continue;
    const started = performance.now();
    results[section] =
      section === 'equal'
        ? await equal(out, url)
        : section === 'kill'
          ? await kill(out, url)
          : section === 'restart'
            ? await restart(out, redisDir, port, current)
            : section === 'throughput'
              ? await throughput(out, url)
              : await overhead(out, url);
    console.log(
      `== ${section} (${((performance.now() - started) / 1000).toFixed(0)} s, load ${loadavg()[0]!.toFixed(1)})`,
    );
    console.log(JSON.stringify(results[section], null, 1));
  }
} finally {
  current.server.kill('SIGKILL');
}
results.loadAfter = loadavg().map((x) => +x.toFixed(1));
writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
console.log(
  `load average before ${JSON.stringify(results.loadBefore)}, after ${JSON.stringify(results.loadAfter)}; results in ${join(out, 'results.json')}`,
);
process.exit(0);
