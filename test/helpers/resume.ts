/** Fixtures for the kill-and-resume tests: the CLI as a killable child, waiting on a run's files. */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ExecutionContext } from 'ava';
import { parseEvents, type RxtrainEvent } from '../../src/pipeline/events.js';
import type { RunSummary } from '../../src/pipeline/run.js';
import { Prng } from '../../src/util/random.js';
import { type CliResult, runCli, tempDir } from './index.js';

export interface Started {
  /** Resolves with the exit status. */
  result: Promise<CliResult>;
  /** Send a signal (once the child has started). */
  kill(signal: NodeJS.Signals): void;
}

/** Start `rxtrain <args>` without waiting for it. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  let pid: number | undefined;
  const result = runCli(args, { env, onSpawn: (p) => (pid = p), timeoutMs: 120_000 });
  return {
    result,
    kill: (signal) => {
      if (pid !== undefined) process.kill(pid, signal);
    },
  };
}

export function readEvents(runDir: string): RxtrainEvent[] {
  const path = join(runDir, 'events.ndjson');
  return existsSync(path) ? parseEvents(readFileSync(path, 'utf8')) : [];
}

export function readSummary(runDir: string): RunSummary | undefined {
  const path = join(runDir, 'summary.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as RunSummary) : undefined;
}

export function checkpointFiles(runDir: string): string[] {
  const dir = join(runDir, 'checkpoints');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** Poll until `condition` holds; fails after `timeoutMs`. */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 60_000,
  everyMs = 3,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A generator for kill moments, seeded from the clock (or RXTRAIN_TEST_SEED) and logged. */
export function momentGenerator(t: ExecutionContext): Prng {
  const seed = Number(process.env.RXTRAIN_TEST_SEED) || Date.now() % 2 ** 32;
  t.log(`kill moments drawn with RXTRAIN_TEST_SEED=${seed}`);
  return new Prng(seed);
}

/**
 * The event log of a run that was resumed `resumes` times reads as one history: sequence numbers
 * without gaps, no training or evaluation step twice, one run-finished at the very end, and a
 * resumed marker for the last resume at the step it resumed from. (An earlier resume's marker is
 * cut with everything else when a later one goes back to a checkpoint taken before it.)
 */
export function assertOneHistory(t: ExecutionContext, runDir: string, resumes: number): void {
  const events = readEvents(runDir);
  t.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i),
    'seq runs 0, 1, 2, … without gaps',
  );
  const trainSteps = events.filter((e) => e.type === 'train').map((e) => e.step);
  t.deepEqual(
    trainSteps,
    [...trainSteps].sort((a, b) => a - b),
    'train steps in order',
  );
  t.is(new Set(trainSteps).size, trainSteps.length, 'no train step twice');
  const evals = events.filter((e) => e.type === 'eval').map((e) => `${e.split}@${e.step}`);
  t.is(new Set(evals).size, evals.length, 'no evaluation twice');
  const checkpoints = events.filter((e) => e.type === 'checkpoint').map((e) => e.step);
  t.is(new Set(checkpoints).size, checkpoints.length, 'no checkpoint event twice');
  t.is(events.filter((e) => e.type === 'run-finished').length, 1);
  t.is(events.at(-1)?.type, 'run-finished');
  const markers = events.filter((e) => e.type === 'resumed');
  t.true(markers.length >= 1 && markers.length <= resumes, `${markers.length} resumed markers`);
  t.is(markers.at(-1)?.step, readSummary(runDir)?.resumedFrom);
}

export interface KillSuiteOptions {
  /** `run` arguments before --run-dir: the config and its overrides. */
  runArgs: string[];
  /** Checkpoint interval the overrides set. */
  every: number;
  /** Steps the run takes. */
  steps: number;
}

/**
 * Kill a run with SIGKILL at five random moments of different kinds — during data loading, twice
 * mid-run, inside a checkpoint write, and mid-run with the resume killed as well — resume each
 * until it completes, and compare every result with an uninterrupted run, bit for bit.
 */
export async function killAndResumeSuite(t: ExecutionContext, options: KillSuiteOptions): Promise<void> {
  const { runArgs, every, steps } = options;
  const rng = momentGenerator(t);
  const root = tempDir();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const warmCache = join(root, 'cache');
  const run = (dir: string, cache = warmCache, env: NodeJS.ProcessEnv = {}) =>
    startCli(['run', ...runArgs, '--run-dir', dir, '--cache', cache, '--quiet'], env);
  const resume = (dir: string, cache = warmCache) => startCli(['resume', dir, '--cache', cache, '--quiet']);
  const newestStep = (dir: string) =>
    Math.max(0, ...readEvents(dir).map((e) => (e.type === 'checkpoint' ? e.step : 0)));
  /** Wait until the run has taken checkpoint number `k` (by its event), then `extraMs` more. */
  const afterCheckpoint = async (dir: string, k: number, extraMs: number) => {
    await waitFor(`checkpoint ${k * every}`, () => newestStep(dir) >= k * every);
    await sleep(extraMs);
  };
  /** SIGKILL a run; false when it had already finished (the moment came too late). */
  const kill = async (started: Started): Promise<boolean> => {
    started.kill('SIGKILL');
    const result = await started.result;
    return result.signal === 'SIGKILL';
  };
  const killed = async (started: Started, what: string) => {
    const result = await kill(started);
    t.true(result, `${what}: the run ended before the kill`);
  };
  const resumeToEnd = async (dir: string, cache = warmCache) => {
    const result = await resume(dir, cache).result;
    t.is(result.code, 0, result.stderr);
    return readSummary(dir)!;
  };

  const reference = await run(join(root, 'reference')).result;
  t.is(reference.code, 0, reference.stderr);
  const expected = readSummary(join(root, 'reference'))!.weightsSha256;
  t.regex(expected ?? '', /^[0-9a-f]{64}$/);

  const lastK = Math.floor(steps / every) - 3;
  const cases: { name: string; go(dir: string): Promise<number> }[] = [
    {
      name: 'during data loading (cold data-stage cache)',
      go: async (dir) => {
        const cold = join(root, 'cold-cache');
        const started = run(dir, cold);
        const delay = rng.int(60);
        await waitFor('decodeIdx to start', () =>
          readEvents(dir).some((e) => e.type === 'stage-started' && e.stage === 'decodeIdx'),
        );
        await sleep(delay);
        await killed(started, 'data loading');
        t.deepEqual(checkpointFiles(dir), [], 'killed before any checkpoint');
        t.false(
          readEvents(dir).some((e) => e.type === 'train'),
          'killed before training',
        );
        const summary = await resumeToEnd(dir, cold);
        // The embedded MNIST's digests are known, so a run of it may leave no cache directory.
        const stages = join(cold, 'stages');
        t.deepEqual(
          existsSync(stages) ? readdirSync(stages).filter((n) => n.endsWith('.tmp')) : [],
          [],
          'the torn cache file was cleaned up',
        );
        t.log(`data loading: killed ${delay} ms after decodeIdx started; resumed from step 0`);
        return summary.resumedFrom ?? -1;
      },
    },
    ...[1, 2].map((n) => ({
      name: `mid-run, random moment ${n}`,
      go: async (dir: string) => {
        // A fast run can end before a late moment comes: then draw an earlier one, in a fresh dir.
        for (let attempt = 0; ; attempt++) {
          const started = run(dir);
          const k = 1 + rng.int(attempt === 0 ? lastK : Math.max(1, lastK >> attempt));
          const extra = rng.int(40 >> attempt);
          await afterCheckpoint(dir, k, extra);
          if (!(await kill(started))) {
            t.log(`mid-run: the run ended before ${extra} ms after checkpoint ${k * every}; another moment`);
            t.true(attempt < 3, 'four moments came too late');
            rmSync(dir, { recursive: true, force: true });
            continue;
          }
          const summary = await resumeToEnd(dir);
          t.log(
            `mid-run: killed ${extra} ms after checkpoint ${k * every}; resumed from ${summary.resumedFrom}`,
          );
          return summary.resumedFrom!;
        }
      },
    })),
    {
      name: 'inside a checkpoint write',
      go: async (dir) => {
        // The writer pauses 400 ms with the temp file half-written: the kill lands inside it.
        const started = run(dir, warmCache, slowCheckpointWrites(400));
        const k = 1 + rng.int(3);
        const temps = new Set<string>();
        await waitFor(`the write of checkpoint ${k}`, () => {
          for (const f of checkpointFiles(dir)) if (f.endsWith('.tmp')) temps.add(f);
          return temps.size >= k;
        });
        await killed(started, 'checkpoint write');
        t.true(
          checkpointFiles(dir).some((f) => f.endsWith('.tmp')),
          'a torn temp file was left: the kill hit the write',
        );
        const summary = await resumeToEnd(dir);
        t.false(checkpointFiles(dir).some((f) => f.endsWith('.tmp')));
        t.log(`checkpoint write: killed inside write ${k}; resumed from ${summary.resumedFrom}`);
        t.is(summary.resumedFrom, (k - 1) * every, 'resumed from the checkpoint before the torn one');
        return summary.resumedFrom!;
      },
    },
    {
      name: 'mid-run, and the resumed run killed again',
      go: async (dir) => {
        const started = run(dir);
        const k1 = 1 + rng.int(lastK >> 1);
        await afterCheckpoint(dir, k1, rng.int(40));
        await killed(started, 'first kill');
        const again = resume(dir);
        const marker = () => readEvents(dir).find((e) => e.type === 'resumed');
        await waitFor('the resume to start', () => marker() !== undefined);
        const from = (marker() as { step: number }).step;
        // A checkpoint of the resumed run itself, then a random moment.
        const k2 = Math.min(Math.ceil((from + 1) / every) + rng.int(3), steps / every - 1);
        await afterCheckpoint(dir, k2, rng.int(40));
        await killed(again, 'second kill');
        const summary = await resumeToEnd(dir);
        t.log(
          `double: killed after checkpoint ${k1 * every}, resumed from ${from}, killed after checkpoint ${k2 * every}; last resume from ${summary.resumedFrom}`,
        );
        return summary.resumedFrom!;
      },
    },
  ];

  for (const [i, c] of cases.entries()) {
    const dir = join(root, `case-${i}`);
    const from = await c.go(dir);
    const summary = readSummary(dir)!;
    t.is(summary.status, 'completed', c.name);
    t.is(summary.steps, steps, c.name);
    t.is(summary.weightsSha256, expected, `${c.name}: resumed from step ${from}, weights differ`);
    assertOneHistory(t, dir, c.name.includes('killed again') ? 2 : 1);
  }
}

/** Environment for a CLI whose checkpoint writes pause `ms` half-written (slowCheckpointWrites.ts). */
export function slowCheckpointWrites(ms: number): NodeJS.ProcessEnv {
  const preload = pathToFileURL(join(import.meta.dirname, 'slowCheckpointWrites.js')).href;
  return { NODE_OPTIONS: `--import ${preload}`, SLOW_CHECKPOINT_MS: String(ms) };
}

/**
 * The environment that holds a CLI right after its `trains`-th train event, until `release()`
 * (test/helpers/holdTraining.ts): a test acts on a run that is certainly mid-way, however fast or
 * slow the machine. `held()` tells when it is held.
 */
export function holdAfterTrain(trains: number): {
  env: NodeJS.ProcessEnv;
  held: () => boolean;
  release: () => void;
} {
  const release = join(tempDir(), 'release');
  return {
    env: {
      NODE_OPTIONS: `--import ${pathToFileURL(join(import.meta.dirname, 'holdTraining.js')).href}`,
      HOLD_AFTER_TRAIN: String(trains),
      HOLD_RELEASE: release,
    },
    held: () => existsSync(`${release}.held`),
    release: () => writeFileSync(release, ''),
  };
}
