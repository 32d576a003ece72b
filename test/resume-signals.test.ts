/** SIGINT and SIGTERM: a checkpoint, exit 130/143, an exact resume; `rxtrain resume`'s own rules. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { listCheckpoints, readCheckpoint } from '../src/pipeline/checkpointFile.js';
import { smallResumableRun, tempDir } from './helpers/index.js';
import {
  assertOneHistory,
  checkpointFiles,
  holdAfterTrain,
  readEvents,
  readSummary,
  sleep,
  slowCheckpointWrites,
  startCli,
  waitFor,
} from './helpers/resume.js';

// The default pipeline on a tenth of MNIST: the signals are the point. 6000 steps: a run held at
// step 300 and signalled there has thousands of steps left when it goes on, so the signal, handled
// at its next turn of the event loop, always finds it still training.
const RUN = [...smallResumableRun(), '--set', 'sgd.steps=6000'];
const STEPS = 6000;

const root = tempDir();
const cache = join(root, 'cache');
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const run = (dir: string, extra: string[] = [], cacheDir = cache) =>
  startCli(['run', ...RUN, ...extra, '--run-dir', dir, '--cache', cacheDir, '--quiet']);
const resume = (dir: string) => startCli(['resume', dir, '--cache', cache, '--quiet']);

/**
 * A run held (test/helpers/holdTraining.ts) right after its third train event, step 300, past
 * checkpoint 300; `signal` sends it a signal while it is held, then lets it go on. Counted, not
 * timed: however fast or slow the machine, the signal meets a run at step 300 with 5,700 to go.
 */
async function signalledAt300(dir: string, signal: NodeJS.Signals, extra: string[] = []) {
  const hold = holdAfterTrain(3);
  const started = startCli(
    ['run', ...RUN, ...extra, '--run-dir', dir, '--cache', cache, '--quiet'],
    hold.env,
  );
  await waitFor('the run to be held at step 300', hold.held, 120_000, 20);
  started.kill(signal);
  hold.release();
  return started.result;
}

let reference: Promise<string> | undefined;
/** weightsSha256 of the uninterrupted run (computed once). */
function expectedWeights(): Promise<string> {
  reference ??= (async () => {
    const dir = join(root, 'reference');
    const result = await run(dir).result;
    if (result.code !== 0) throw new Error(result.stderr);
    return readSummary(dir)!.weightsSha256!;
  })();
  return reference;
}

const newestCheckpointStep = (dir: string) =>
  Math.max(0, ...readEvents(dir).map((e) => (e.type === 'checkpoint' ? e.step : 0)));

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129], // the terminal closed: the same as SIGTERM, not a kill without a checkpoint
] as const) {
  test.serial(`${signal}: a checkpoint is written, exit ${code}, and resume is exact`, async (t) => {
    const expected = await expectedWeights();
    const dir = join(root, signal);
    const result = await signalledAt300(dir, signal);
    t.is(result.code, code, result.stderr);
    t.regex(result.stdout, /^interrupted mnist-logreg: .* after [\d,]+ steps/);
    const newest = readCheckpoint(join(dir, 'checkpoints', listCheckpoints(join(dir, 'checkpoints'))[0]!));
    t.is(newest.meta.reason, 'signal');
    t.true(newest.meta.step >= 300 && newest.meta.step < STEPS, `stopped at ${newest.meta.step}`);
    const stopped = readSummary(dir)!;
    t.is(stopped.status, 'interrupted');
    t.is(stopped.steps, newest.meta.step);
    t.like(readEvents(dir).at(-1), { type: 'run-finished', status: 'interrupted', exitCode: code });

    const resumed = await resume(dir).result;
    t.is(resumed.code, 0, resumed.stderr);
    const summary = readSummary(dir)!;
    t.is(summary.resumedFrom, newest.meta.step);
    t.is(summary.weightsSha256, expected);
    assertOneHistory(t, dir, 1);
  });
}

test.serial(
  'SIGINT while the data loads stops at once without a checkpoint; resume starts over',
  async (t) => {
    // A cold data-stage cache and all of MNIST: the data takes long enough to load to be interrupted.
    const full = ['--set', 'fetch.url=embedded:mnist'];
    const reference = join(root, 'early-reference');
    t.is((await run(reference, full).result).code, 0);
    const expected = readSummary(reference)!.weightsSha256;
    const dir = join(root, 'early');
    const started = run(dir, full, join(root, 'cold-cache'));
    await waitFor('fetch to start', () =>
      readEvents(dir).some((e) => e.type === 'stage-started' && e.stage === 'fetch'),
    );
    started.kill('SIGINT');
    const result = await started.result;
    t.is(result.code, 130, result.stderr);
    t.deepEqual(checkpointFiles(dir), []);
    t.is(readSummary(dir)?.status, 'interrupted');
    const resumed = await resume(dir).result;
    t.is(resumed.code, 0, resumed.stderr);
    t.is(readSummary(dir)!.weightsSha256, expected);
    t.like(
      readEvents(dir).find((e) => e.type === 'warning'),
      { code: 'W_RESUME_FROM_START' },
    );
    assertOneHistory(t, dir, 1);
  },
);

test.serial(
  'checkpoint.onSignal false: SIGINT stops without a checkpoint, exit 130, still resumable',
  async (t) => {
    const expected = await expectedWeights();
    const dir = join(root, 'no-signal-checkpoint');
    const result = await signalledAt300(dir, 'SIGINT', ['--set', 'checkpoint.onSignal=false']);
    t.is(result.code, 130, result.stderr);
    const reasons = listCheckpoints(join(dir, 'checkpoints')).map(
      (f) => readCheckpoint(join(dir, 'checkpoints', f)).meta.reason,
    );
    t.false(reasons.includes('signal'), reasons.join());
    const resumed = await resume(dir).result;
    t.is(resumed.code, 0, resumed.stderr);
    // The checkpoint policy is no part of the training: the weights are the same bits.
    t.is(readSummary(dir)!.weightsSha256, expected);
  },
);

test.serial(
  'resume refuses a run in progress and a changed config, says when a run had completed, rejects a non-run directory',
  async (t) => {
    await expectedWeights();
    const done = join(root, 'reference');
    const again = await resume(done).result;
    t.is(again.code, 0);
    t.regex(again.stderr, /had already completed; nothing was run/);
    t.regex(again.stdout, /^completed mnist-logreg/);

    const dir = join(root, 'changed');
    // The run stops dead after its second train event (step 200, past checkpoint 100) until it is
    // killed, so it is certainly still going when resume is tried, however slow that is to start.
    const hold = holdAfterTrain(2);
    const started = startCli(['run', ...RUN, '--run-dir', dir, '--cache', cache, '--quiet'], hold.env);
    await waitFor('the run to be held', hold.held, 120_000, 20);
    const busy = await resume(dir).result;
    t.is(busy.code, 2, 'a run in progress is not resumed under it');
    t.regex(busy.stderr, /^rxtrain: E_USAGE: .*: in use by rxtrain process \d+/);
    started.kill('SIGKILL');
    await started.result;
    const config = join(dir, 'config.yaml');
    const text = readFileSync(config, 'utf8');
    t.true(text.includes('batchSize: 64'));
    writeFileSync(config, text.replace('batchSize: 64', 'batchSize: 32'));
    const refused = await resume(dir).result;
    t.is(refused.code, 1);
    t.regex(
      refused.stderr,
      /^rxtrain: E_RESUME: .*config\.yaml: the config differs from the one the run started with/,
    );
    t.is(refused.stderr.trim().split('\n').length, 1, 'one line');

    const notARun = await resume(join(root, 'nowhere')).result;
    t.is(notARun.code, 2);
    t.regex(notARun.stderr, /not a run directory \(no config\.yaml\)/);
  },
);

test.serial(
  'a second signal exits at once and says what it skipped; the last checkpoint still resumes',
  async (t) => {
    const expected = await expectedWeights();
    const dir = join(root, 'twice');
    // Each checkpoint write pauses half-written, so the second signal lands while the first one's
    // checkpoint is being written.
    const started = startCli(
      ['run', ...RUN, '--run-dir', dir, '--cache', cache, '--quiet'],
      slowCheckpointWrites(1500),
    );
    await waitFor('checkpoint 100', () => newestCheckpointStep(dir) >= 100);
    started.kill('SIGINT');
    await sleep(200);
    started.kill('SIGINT');
    const result = await started.result;
    t.is(result.code, 130);
    t.regex(
      result.stderr,
      /rxtrain: SIGINT again: exiting at once, without the checkpoint and summary the first SIGINT was writing; rxtrain resume continues from the last checkpoint\n/,
    );
    const resumed = await resume(dir).result;
    t.is(resumed.code, 0, resumed.stderr);
    t.is(readSummary(dir)!.weightsSha256, expected);
  },
);
