/** The checkpoint policy of a config: every, everySeconds, keep, keepBest, atEnd (in-process runs). */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { listCheckpoints, readCheckpoint } from '../src/pipeline/checkpointFile.js';
import { loadConfig } from '../src/pipeline/config.js';
import type { RxtrainEvent } from '../src/pipeline/events.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

const root = tempDir();
const cacheDir = join(root, 'cache');
test.after.always(() => rmSync(root, { recursive: true, force: true }));

async function run(name: string, overrides: string[], file = 'config/mnist-logreg.yaml') {
  const config = await loadConfig(join(ROOT, file), {
    stages: builtinStages,
    overrides,
  });
  const runDir = join(root, name);
  const events: RxtrainEvent[] = [];
  const summary = await runExperiment({ config, runDir, cacheDir, onEvent: (e) => events.push(e) });
  const dir = join(runDir, 'checkpoints');
  const files = listCheckpoints(dir);
  const checkpoints = files.map((f) => readCheckpoint(join(dir, f)));
  return { summary, events, files, checkpoints };
}

const checkpointEvents = (events: RxtrainEvent[]) =>
  events.flatMap((e) => (e.type === 'checkpoint' ? [`${e.step}:${e.reason}`] : []));

test.serial('every N steps, keep the last K, and one at the end', async (t) => {
  const { summary, events, checkpoints } = await run('every', [
    'sgd.steps=500',
    'checkpoint.every=100',
    'checkpoint.keep=2',
  ]);
  t.is(summary.status, 'completed');
  t.deepEqual(checkpointEvents(events), [
    '100:interval',
    '200:interval',
    '300:interval',
    '400:interval',
    '500:final',
  ]);
  t.deepEqual(
    checkpoints.map((c) => [c.meta.step, c.meta.reason, c.meta.final]),
    [
      [500, 'final', true],
      [400, 'interval', false],
    ],
  );
  // What a checkpoint holds: the updater's weights and state, the sampler's position, the history.
  const last = checkpoints[0]!;
  t.deepEqual(Object.keys(last.states).sort(), ['evaluate', 'sgd', 'shuffle']);
  t.true((last.states['sgd'] as { weights: unknown }).weights instanceof Float32Array);
  t.deepEqual(last.model.weights, (last.states['sgd'] as { weights: Float32Array }).weights);
  t.like(last.states['shuffle'], { position: { mode: 'permutation' } });
  t.deepEqual(
    (last.states['evaluate'] as { history: { step: number }[] }).history.map((h) => h.step),
    [0, 500],
  );
  t.is(last.meta.configHash.length, 64);
  t.regex(last.meta.rxtrainVersion, /^\d+\.\d+\.\d+/);
});

test.serial('atEnd false: no checkpoint of the finished model', async (t) => {
  const { summary, events } = await run('no-end', [
    'sgd.steps=250',
    'checkpoint.every=100',
    'checkpoint.atEnd=false',
  ]);
  t.is(summary.status, 'completed');
  t.deepEqual(checkpointEvents(events), ['100:interval', '200:interval']);
});

test.serial('everySeconds: checkpoints by the clock, at least that far apart', async (t) => {
  const { events } = await run('seconds', ['sgd.steps=1200', 'checkpoint.everySeconds=0.05']);
  const timed = events.filter((e) => e.type === 'checkpoint' && e.reason === 'time');
  t.true(timed.length >= 2, `${timed.length} time checkpoints`);
  t.false(
    events.some((e) => e.type === 'checkpoint' && e.reason === 'interval'),
    'no step-based ones',
  );
  // elapsedMs is rounded to the millisecond.
  for (let i = 1; i < timed.length; i++) {
    const gap = timed[i]!.elapsedMs - timed[i - 1]!.elapsedMs;
    t.true(gap >= 49, `gap ${i}: ${gap} ms`);
  }
});

test.serial('keepBest keeps the best checkpoint by an evaluation metric besides the newest', async (t) => {
  // A large learning rate makes the test loss go up and down, so the best is not the newest.
  const { events, files, checkpoints } = await run('best', [
    'sgd.steps=1200',
    'sgd.lr=3',
    'evaluate.every=100',
    'checkpoint.every=100',
    'checkpoint.keep=1',
    'checkpoint.keepBest=test.loss',
  ]);
  const losses = events.flatMap((e) => (e.type === 'eval' && e.step > 0 ? [[e.step, e.loss] as const] : []));
  const [bestStep] = losses.reduce((a, b) => (b[1] < a[1] ? b : a));
  t.not(bestStep, 1200, 'the fixture should make the best differ from the newest');
  t.deepEqual(files, [
    `ckpt-${String(1200).padStart(9, '0')}.rxckpt`,
    `ckpt-${String(bestStep).padStart(9, '0')}.rxckpt`,
  ]);
  t.like(checkpoints[0]!.meta.best, { metric: 'test.loss', file: files[1] });
});

for (const file of ['config/mnist-logreg.yaml', 'config/mnist-notebook.yaml']) {
  test.serial(`${file}: checkpoints, however often, do not change the weights`, async (t) => {
    const weights = new Set<string | undefined>();
    const policies = [[], ['checkpoint.every=1'], ['checkpoint.every=7', 'checkpoint.keep=1']];
    for (const [i, policy] of policies.entries()) {
      const name = `policy-${i}-${file.includes('notebook') ? 'notebook' : 'default'}`;
      const { summary, events } = await run(name, ['sgd.steps=200', ...policy], file);
      t.log(
        `${policy.join(' ') || 'no interval checkpoints'}: ${checkpointEvents(events).length} checkpoints`,
      );
      weights.add(summary.weightsSha256);
    }
    t.is(weights.size, 1);
  });
}
