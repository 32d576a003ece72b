/**
 * A checkpoint records what the run depended on besides its config — the data (the data stages'
 * cache key, a digest of the source's bytes) and the user stage modules' code — and `resume`
 * refuses a change with one line, unless told `allowChangedData`.
 */
import { appendFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DEFAULT_SYNTH, writeSynthDataset } from '../src/formats/synth.js';
import { listCheckpoints, readCheckpoint } from '../src/pipeline/checkpointFile.js';
import { loadConfig } from '../src/pipeline/config.js';
import { resumeExperiment } from '../src/pipeline/resume.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

const root = tempDir();
test.after.always(() => rmSync(root, { recursive: true, force: true }));

/** Run `config` until the checkpoint of step 40 is written, then stop it as SIGINT would. */
async function stopped(config: Awaited<ReturnType<typeof loadConfig>>, runDir: string, cacheDir: string) {
  const stop = new AbortController();
  const summary = await runExperiment({
    config,
    runDir,
    cacheDir,
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'checkpoint' && e.step >= 40) stop.abort('SIGINT');
    },
  });
  return summary;
}

test('resume refuses data that changed since the checkpoint, and goes on when allowed', async (t) => {
  const data = join(root, 'data');
  const cacheDir = join(root, 'cache');
  await writeSynthDataset(data, { ...DEFAULT_SYNTH, train: 2000, test: 200, seed: 1 });
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
    stages: builtinStages,
    overrides: [`fetch.url=${data}`, 'checkpoint.every=20', 'sgd.steps=200', 'evaluate.every=0'],
  });
  const runDir = join(root, 'data-run');
  t.is((await stopped(config, runDir, cacheDir)).status, 'interrupted');
  const checkpoints = join(runDir, 'checkpoints');
  const newest = readCheckpoint(join(checkpoints, listCheckpoints(checkpoints)[0]!));
  t.regex(newest.meta.depends?.data ?? '', /^[0-9a-f]{16,}$/, 'the data digest is recorded');

  // The same file names, other bytes.
  rmSync(data, { recursive: true });
  await writeSynthDataset(data, { ...DEFAULT_SYNTH, train: 2000, test: 200, seed: 2 });
  await t.throwsAsync(resumeExperiment(runDir, { stages: builtinStages, cacheDir }), {
    message:
      /^the data changed since \S+ckpt-\d+\.rxckpt was taken \(data digest [0-9a-f]{12}, now [0-9a-f]{12}\): resuming would train on other data; restore it, or pass --allow-changed-data$/,
  });
  const allowed = await resumeExperiment(runDir, { stages: builtinStages, cacheDir, allowChangedData: true });
  t.is(allowed.status, 'completed');
  t.deepEqual(allowed.stop, { reason: 'epochs' });
});

test('resume refuses a user stage module whose code changed since the checkpoint', async (t) => {
  // Inside the package (dist/ is ignored), so the modules' `import 'rxtrain'` resolves.
  const dir = mkdtempSync(join(ROOT, 'dist', 'modules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['mnist-running-count.yaml', 'subset-stage.js', 'running-count-stage.js'])
    copyFileSync(join(ROOT, 'examples', f), join(dir, f));
  const cacheDir = join(root, 'cache');
  const config = await loadConfig(join(dir, 'mnist-running-count.yaml'), {
    stages: builtinStages,
    overrides: ['checkpoint.every=20'],
  });
  const runDir = join(root, 'module-run');
  t.is((await stopped(config, runDir, cacheDir)).status, 'interrupted');
  appendFileSync(join(dir, 'running-count-stage.js'), '\n// changed after the checkpoint\n');
  await t.throwsAsync(resumeExperiment(runDir, { stages: builtinStages, cacheDir }), {
    message:
      /running-count-stage\.js: the stage module changed since \S+ was taken; restore it, or pass --allow-changed-data$/,
  });
});
