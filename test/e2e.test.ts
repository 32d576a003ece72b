import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents } from '../src/pipeline/events.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

test('the default experiment trains MNIST to at least 0.920 test accuracy, end to end', async (t) => {
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), { stages: builtinStages });
  const runDir = join(tempDir(), 'run');
  const summary = await runExperiment({ config, runDir, cacheDir: tempDir() });
  t.is(summary.status, 'completed');
  t.true(summary.test!.accuracy >= 0.92, `test accuracy ${summary.test!.accuracy}`);
  t.is(summary.epochs, 5);

  const onDisk = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
  t.is(onDisk.status, 'completed');
  t.regex(onDisk.weightsSha256, /^[0-9a-f]{64}$/);
  t.is(onDisk.test.accuracy, summary.test!.accuracy);
  t.is(readFileSync(join(runDir, 'weights.f32')).byteLength, 785 * 10 * 4);

  const events = parseEvents(readFileSync(join(runDir, 'events.ndjson'), 'utf8'));
  t.is(events[0]!.type, 'run-started');
  t.is(events.at(-1)!.type, 'run-finished');
  const evals = events.filter((e) => e.type === 'eval');
  t.deepEqual(
    evals.map((e) => (e as { step: number }).step),
    [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 4690],
  );
  const first = evals[0] as { accuracy: number };
  t.true(first.accuracy < 0.2, 'chance level before training');
  for (const e of events) {
    t.is(typeof e.time, 'string');
    t.is(typeof e.seq, 'number');
  }
  t.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i),
  );
  for (const type of ['stage-started', 'stage-progress', 'stage-finished', 'train', 'eval', 'run-finished']) {
    t.true(
      events.some((e) => e.type === type),
      `has a ${type} event`,
    );
  }
});
