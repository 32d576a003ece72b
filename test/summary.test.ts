/**
 * summary.json says what happened: the last evaluation of each split (an interrupted run's too),
 * the evaluator's best, and why training ended — completed passes, the step cap, early stopping,
 * a signal, or an error with its line.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { resultLine } from '../src/cli/run.js';
import { loadConfig } from '../src/pipeline/config.js';
import { type RunSummary, runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

const root = tempDir();
test.after.always(() => rmSync(root, { recursive: true, force: true }));
const cacheDir = join(root, 'cache');
const config = (overrides: string[]) =>
  loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), { stages: builtinStages, overrides });
const onDisk = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;

test('an interrupted run keeps its last evaluations, its best step, and the signal that stopped it', async (t) => {
  const stop = new AbortController();
  const runDir = join(root, 'interrupted');
  const summary = await runExperiment({
    config: await config(['evaluate.every=100', 'sgd.epochs=1']),
    runDir,
    cacheDir,
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'eval' && e.step >= 300) stop.abort('SIGTERM');
    },
  });
  t.is(summary.status, 'interrupted');
  t.deepEqual(summary.stop, { reason: 'signal', detail: 'SIGTERM' });
  t.true(summary.splits['test']!.step >= 300, 'the last evaluation before the stop');
  t.is(summary.test?.accuracy, summary.splits['test']!.accuracy);
  t.is(summary.best?.metric, 'test.accuracy');
  t.deepEqual(onDisk(runDir).splits, summary.splits);
  t.regex(
    resultLine(summary),
    /^interrupted mnist-logreg: test accuracy 0\.\d{4} \(loss [\d.]+\) at step [\d,]+; best test\.accuracy 0\.\d{4} at step [\d,]+; stopped by SIGTERM after/,
  );
});

test('an early-stopped run names the evaluator’s reason and its best step', async (t) => {
  const runDir = join(root, 'early');
  const summary = await runExperiment({
    // Every evaluation after the first counts as no progress (minDelta 0.5): stop after two.
    config: await config(['evaluate.every=100', 'evaluate.patience=2', 'evaluate.minDelta=0.5']),
    runDir,
    cacheDir,
  });
  t.is(summary.status, 'completed');
  t.is(summary.stop?.reason, 'early-stop');
  t.regex(
    summary.stop?.detail ?? '',
    /test\.accuracy has not improved for 2 evaluations \(best [\d.]+ at step 100\)/,
  );
  t.deepEqual(summary.best && { metric: summary.best.metric, step: summary.best.step }, {
    metric: 'test.accuracy',
    step: 100,
  });
  t.is(summary.steps, 300);
  t.regex(
    resultLine(summary),
    /; best test\.accuracy [\d.]+ at step 100; stopped early \(test\.accuracy has not improved/,
  );
});

test('a completed run ended its passes or its step cap; a failed run carries its error line', async (t) => {
  const done = await runExperiment({
    config: await config(['sgd.epochs=1']),
    runDir: join(root, 'done'),
    cacheDir,
  });
  t.deepEqual(done.stop, { reason: 'epochs' });
  const capped = await runExperiment({
    config: await config(['sgd.steps=50']),
    runDir: join(root, 'capped'),
    cacheDir,
  });
  t.deepEqual(capped.stop, { reason: 'steps' });

  const failedDir = join(root, 'failed');
  await t.throwsAsync(runExperiment({ config: await config(['sgd.lr=1e38']), runDir: failedDir, cacheDir }), {
    message: /the loss became/,
  });
  const failed = onDisk(failedDir);
  t.is(failed.status, 'failed');
  t.is(failed.stop?.reason, 'error');
  t.regex(
    failed.stop?.detail ?? '',
    /^E_DATA: sgd: the loss became (NaN|Infinity) at step \d+; lower sgd\.lr$/,
  );
  // It says how far it got: the steps before the one that failed, as its last train event did.
  const failedAt = Number(/at step (\d+)/.exec(failed.stop!.detail!)![1]);
  t.is(failed.steps, failedAt - 1);
  const trains = readFileSync(join(failedDir, 'events.ndjson'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'train');
  if (failedAt > 1) t.is(trains.at(-1).step, failedAt - 1);
  t.is(failed.samples, (failedAt - 1) * 64);
});
