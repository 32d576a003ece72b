/**
 * Resuming past damage (in-process runs): a truncated or bit-flipped newest checkpoint, no valid
 * checkpoint at all, a full disk while saving, a run killed after its final checkpoint.
 */
import * as nodeFs from 'node:fs';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { listCheckpoints, readCheckpoint, writeCheckpoint } from '../src/pipeline/checkpointFile.js';
import { loadConfig } from '../src/pipeline/config.js';
import type { RxtrainEvent } from '../src/pipeline/events.js';
import { resumeExperiment } from '../src/pipeline/resume.js';
import { type RunOptions, runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import type { AtomicFs } from '../src/util/atomicFile.js';
import { RxtrainError } from '../src/util/errors.js';
import { ROOT, tempDir } from './helpers/index.js';
import { assertOneHistory, readEvents, readSummary } from './helpers/resume.js';

const OVERRIDES = ['sgd.steps=600', 'checkpoint.every=100', 'evaluate.every=200'];
const root = tempDir();
const cacheDir = join(root, 'cache');
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const config = () =>
  loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), { stages: builtinStages, overrides: OVERRIDES });

async function run(runDir: string, extra: Partial<RunOptions> = {}) {
  return runExperiment({ config: await config(), runDir, cacheDir, ...extra });
}

function resume(runDir: string) {
  const events: RxtrainEvent[] = [];
  return resumeExperiment(runDir, { stages: builtinStages, cacheDir, onEvent: (e) => events.push(e) }).then(
    (summary) => ({ summary, events }),
  );
}

let shared: Promise<{ expected: string; stopped: string }> | undefined;
/** An uninterrupted run's weights, and a run stopped (as by SIGINT) after checkpoint 300. */
function fixtures() {
  shared ??= (async () => {
    const expected = (await run(join(root, 'reference'))).weightsSha256!;
    const stopped = join(root, 'stopped');
    const stop = new AbortController();
    const summary = await run(stopped, {
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'checkpoint' && e.step === 300) stop.abort('SIGINT');
      },
    });
    if (summary.status !== 'interrupted') throw new Error(`fixture run ${summary.status}`);
    return { expected, stopped };
  })();
  return shared;
}

/** A copy of the stopped run, its checkpoint files newest first. */
async function copyOfStopped(name: string) {
  const { expected, stopped } = await fixtures();
  const dir = join(root, name);
  cpSync(stopped, dir, { recursive: true });
  const files = listCheckpoints(join(dir, 'checkpoints')).map((f) => join(dir, 'checkpoints', f));
  return { expected, dir, files };
}

for (const damage of ['truncated', 'bit-flipped'] as const) {
  test(`a ${damage} newest checkpoint is detected, set aside, the previous one used, and an event says so`, async (t) => {
    const { expected, dir, files } = await copyOfStopped(damage);
    const [newest, previous] = files as [string, string];
    const bytes = readFileSync(newest);
    if (damage === 'truncated') writeFileSync(newest, bytes.subarray(0, bytes.byteLength - 1000));
    else {
      bytes[bytes.byteLength >> 1]! ^= 0x04; // one bit in the middle of the weights
      writeFileSync(newest, bytes);
    }
    const previousStep = readCheckpoint(previous).meta.step;
    const { summary, events } = await resume(dir);
    const resumed = events.find((e) => e.type === 'resumed');
    t.like(resumed, { step: previousStep, checkpoint: previous, invalid: [newest] });
    const warning = events.find((e) => e.type === 'warning' && e.code === 'W_CHECKPOINT_INVALID');
    t.truthy(warning, 'a warning event names the bad checkpoint');
    t.regex(
      (warning as { message: string }).message,
      new RegExp(`^${newest}: checksum mismatch \\(the file is corrupt or truncated\\); set aside`),
    );
    t.true(existsSync(`${newest}.invalid`));
    t.is(summary.resumedFrom, previousStep);
    t.is(summary.weightsSha256, expected);
    assertOneHistory(t, dir, 1);
  });
}

test('with no valid checkpoint the run starts again from the beginning in the same directory', async (t) => {
  const { expected, dir, files } = await copyOfStopped('all-bad');
  for (const f of files) writeFileSync(f, 'garbage');
  const { summary, events } = await resume(dir);
  t.like(
    events.find((e) => e.type === 'resumed'),
    { step: 0, checkpoint: null },
  );
  t.is(events.filter((e) => e.type === 'warning' && e.code === 'W_CHECKPOINT_INVALID').length, files.length);
  t.truthy(events.find((e) => e.type === 'warning' && e.code === 'W_RESUME_FROM_START'));
  t.is(summary.weightsSha256, expected);
  // The cut went to byte 0: the history starts over with this attempt.
  assertOneHistory(t, dir, 1);
});

test('a run killed after its final checkpoint is finished from it without training again', async (t) => {
  const { expected } = await fixtures();
  const dir = join(root, 'final-only');
  await run(dir);
  for (const f of ['summary.json', 'weights.f32', 'model.json']) rmSync(join(dir, f));
  const { summary, events } = await resume(dir);
  t.is(summary.status, 'completed');
  t.is(summary.steps, 600);
  t.is(summary.weightsSha256, expected);
  t.false(
    events.some((e) => e.type === 'train' || e.type === 'stage-started'),
    'nothing ran',
  );
  t.is(summary.test?.accuracy, readSummary(join(root, 'reference'))!.test!.accuracy);
  t.deepEqual(readFileSync(join(dir, 'weights.f32')), readFileSync(join(root, 'reference', 'weights.f32')));
});

/** node:fs, except that checkpoint temp file number `n` (1-based) hits a full disk half-way. */
function diskFullAtCheckpoint(n: number): AtomicFs {
  let opened = 0;
  const failing = new Set<number>();
  return {
    ...nodeFs,
    openSync: (path, flags) => {
      const fd = nodeFs.openSync(path, flags);
      if (++opened === n) failing.add(fd);
      return fd;
    },
    writeSync: (fd, buffer, offset, length) => {
      if (!failing.has(fd)) return nodeFs.writeSync(fd, buffer, offset, length);
      if (offset > 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return nodeFs.writeSync(fd, buffer, offset, Math.min(length, 4096));
    },
  };
}

test('a full disk while saving: the run fails with one clear error, the previous checkpoint loads, resume is exact', async (t) => {
  const { expected } = await fixtures();
  const dir = join(root, 'full-disk');
  const error = await t.throwsAsync(run(dir, { checkpointWrite: { fs: diskFullAtCheckpoint(3) } }), {
    instanceOf: RxtrainError,
  });
  const failed = join(dir, 'checkpoints', 'ckpt-000000300.rxckpt');
  t.is(error!.message, `${failed}: cannot write (ENOSPC: no space left on device)`);
  t.like(readSummary(dir), { status: 'failed', error: { code: 'E_IO' } });
  t.deepEqual(listCheckpoints(join(dir, 'checkpoints')), ['ckpt-000000200.rxckpt', 'ckpt-000000100.rxckpt']);
  t.false(nodeFs.readdirSync(join(dir, 'checkpoints')).some((f) => f.endsWith('.tmp')));
  t.is(readCheckpoint(join(dir, 'checkpoints', 'ckpt-000000200.rxckpt')).meta.step, 200);
  const { summary } = await resume(dir);
  t.is(summary.resumedFrom, 200);
  t.is(summary.weightsSha256, expected);
  assertOneHistory(t, dir, 1);
});

test('a checkpoint without the state of a stateful stage makes resume fail loudly, not start over', async (t) => {
  const { dir, files } = await copyOfStopped('stateless');
  const newest = readCheckpoint(files[0]!);
  delete newest.states['evaluate'];
  writeCheckpoint(join(dir, 'checkpoints'), newest, { keep: 10 });
  const log = readFileSync(join(dir, 'events.ndjson'));
  const error = await t.throwsAsync(resume(dir), { instanceOf: RxtrainError });
  t.is(error!.code, 'E_RESUME');
  t.regex(
    error!.message,
    /stage "evaluate" \(evaluate\) is stateful but the checkpoint holds no state for it/,
  );
  t.deepEqual(readFileSync(join(dir, 'events.ndjson')), log, 'the run directory is left as it was');
  t.is(readSummary(dir)?.status, 'interrupted');
});

test('the buffer sampler with a holdout resumes exactly, in its first pass and in its second', async (t) => {
  const overrides = [
    'sgd.steps=1100',
    'checkpoint.every=100',
    'evaluate.every=500',
    'evaluate.splits=[val, test]',
    'shuffle.mode=buffer',
    'shuffle.bufferSize=2000',
    'shuffle.holdout={size: 1000}',
    'normalise.standardise=global',
    'normalise.mean=0.13',
    'normalise.std=0.31',
  ];
  const buffered = () =>
    loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), { stages: builtinStages, overrides });
  const reference = await runExperiment({
    config: await buffered(),
    runDir: join(root, 'buffer-ref'),
    cacheDir,
  });
  t.truthy(reference.val, 'the holdout reached the evaluator');
  // 59,000 samples a pass in batches of 64. At step 300 the holdout is not complete yet, so the
  // evaluation of step 0 is still waiting (it rides in the checkpoint); step 1000 is in pass 2.
  for (const stopAt of [300, 1000]) {
    const dir = join(root, `buffer-${stopAt}`);
    const stop = new AbortController();
    await runExperiment({
      config: await buffered(),
      runDir: dir,
      cacheDir,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'checkpoint' && e.step === stopAt) stop.abort('SIGINT');
      },
    });
    const newest = readCheckpoint(join(dir, 'checkpoints', listCheckpoints(join(dir, 'checkpoints'))[0]!));
    const pending = (newest.states['evaluate'] as { pending: { step: number }[] }).pending;
    t.deepEqual(
      pending.map((p) => p.step),
      stopAt === 300 ? [0] : [],
    );
    const { summary } = await resume(dir);
    t.true(summary.resumedFrom! >= stopAt);
    t.deepEqual(summary.splits, reference.splits);
    t.is(summary.weightsSha256, reference.weightsSha256);
    const evals = readEvents(dir).flatMap((e) => (e.type === 'eval' ? [`${e.split}@${e.step}`] : []));
    t.deepEqual(evals.sort(), [
      'test@0',
      'test@1000',
      'test@1100',
      'test@500',
      'val@0',
      'val@1000',
      'val@1100',
      'val@500',
    ]);
    assertOneHistory(t, dir, 1);
  }
});
