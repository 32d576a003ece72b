/** Data that trains without a word but means nothing, and a divergence with the wrong advice. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DEFAULT_SYNTH, writeSynthDataset } from '../src/formats/synth.js';
import { loadConfig } from '../src/pipeline/config.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

const root = tempDir();
test.after.always(() => rmSync(root, { recursive: true, force: true }));
const config = (overrides: string[]) =>
  loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), { stages: builtinStages, overrides });

test('train and test images of different shapes but equal pixel counts fail, naming both files', async (t) => {
  const data = join(root, 'shapes');
  await writeSynthDataset(data, { ...DEFAULT_SYNTH, train: 500, test: 100 });
  // The test images as 14×56: the same 784 bytes each, another shape in the header.
  const file = join(data, 't10k-images-idx3-ubyte');
  const bytes = readFileSync(file);
  bytes.writeUInt32BE(14, 8);
  bytes.writeUInt32BE(56, 12);
  writeFileSync(file, bytes);
  const error = await t.throwsAsync(
    runExperiment({
      config: await config([`fetch.url=${data}`]),
      runDir: join(root, 'shapes-run'),
      cacheDir: root,
    }),
  );
  // Whichever split's batch comes second is the one named first.
  t.regex(
    error!.message,
    /(train-images-idx3-ubyte: train examples of shape 28×28, but test examples \(\S+t10k-images-idx3-ubyte\) are 14×56|t10k-images-idx3-ubyte: test examples of shape 14×56, but train examples \(\S+train-images-idx3-ubyte\) are 28×28)$/,
  );
});

test('a loss that diverges because of the features points at normalise, not only at the learning rate', async (t) => {
  const error = await t.throwsAsync(
    runExperiment({
      config: await config(['normalise.scale=1e30', 'sgd.steps=50']),
      runDir: join(root, 'scale-run'),
      cacheDir: root,
    }),
  );
  t.regex(
    error!.message,
    /^sgd: the loss became \S+ at step \d+; the features reach 2\.55e\+32 in magnitude: check normalise\.scale/,
  );
});
