import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

async function run(file: string, overrides: string[]) {
  const config = await loadConfig(join(ROOT, file), { stages: builtinStages, overrides });
  return runExperiment({ config, runDir: join(tempDir(), 'run'), cacheDir: tempDir() });
}

test('the notebook config run twice gives byte-identical weights; another seed does not', async (t) => {
  const a = await run('config/mnist-notebook.yaml', []);
  const b = await run('config/mnist-notebook.yaml', []);
  t.is(a.weightsSha256, b.weightsSha256);
  t.is(a.test!.accuracy, b.test!.accuracy);
  const c = await run('config/mnist-notebook.yaml', ['seed=1']);
  t.not(c.weightsSha256, a.weightsSha256);
});

test('the default config run twice gives byte-identical weights (shortened)', async (t) => {
  const overrides = ['sgd.steps=600', 'evaluate.every=200'];
  const a = await run('config/mnist-logreg.yaml', overrides);
  const b = await run('config/mnist-logreg.yaml', overrides);
  t.is(a.steps, 600);
  t.is(a.weightsSha256, b.weightsSha256);
});

test('the notebook experiment: chance before training, 0.7–0.86 after 5000 steps', async (t) => {
  const r = await run('config/mnist-notebook.yaml', ['seed=3']);
  t.is(r.steps, 5000);
  t.true(r.test!.accuracy > 0.7 && r.test!.accuracy < 0.86, `accuracy ${r.test!.accuracy}`);
});
