/**
 * `rxtrain predict` and `loadModel(runDir).predict(pixels)`: test digits written as PNG files by
 * `rxtrain inspect` get the labels the run's own evaluation gave them; PNGs of other sizes are
 * averaged down to the input; bad inputs get one line each. And the PNG conversion alone.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { PNG } from 'pngjs';
import { main } from '../src/cli.js';
import { decodePngGrey, resizeGrey } from '../src/formats/pngGrey.js';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents } from '../src/pipeline/events.js';
import { loadModel } from '../src/pipeline/loadModel.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { MNIST_DIR, ROOT, tempDir } from './helpers/index.js';

const CONFIG = join(ROOT, 'config/mnist-mlp.yaml');

/** Run a command of the CLI in this process: its exit code and output. */
async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    stderrIsTty: false,
    env: {},
  });
  return { code, stdout, stderr };
}

/** A short run of the MLP config whose final evaluation lists every misclassified test digit. */
const trained = (async () => {
  const config = await loadConfig(CONFIG, {
    stages: builtinStages,
    overrides: [
      'sgd.steps=250',
      'sgd.model={type: mlp, hidden: [32]}',
      'evaluate.every=0',
      'evaluate.misclassified=1000',
    ],
  });
  const runDir = join(tempDir(), 'run');
  const cache = tempDir();
  await runExperiment({ config, runDir, cacheDir: cache });
  const events = parseEvents(readFileSync(join(runDir, 'events.ndjson'), 'utf8'));
  const final = events.filter((e) => e.type === 'eval').at(-1) as {
    misclassified: { index: number; label: number; predicted: number }[];
  };
  const labels = readFileSync(join(MNIST_DIR, 't10k-labels-idx1-ubyte')).subarray(8);
  // what the evaluation predicted for test digit i: the listed prediction, else its label
  const wrong = new Map(final.misclassified.map((m) => [m.index, m.predicted]));
  const evaluated = (i: number) => wrong.get(i) ?? labels[i]!;
  return { runDir, cache, evaluated, misclassified: final.misclassified.map((m) => m.index) };
})();

const testImage = (i: number) =>
  readFileSync(join(MNIST_DIR, 't10k-images-idx3-ubyte')).subarray(16 + i * 784, 16 + (i + 1) * 784);

test('ten test digits written by inspect get the labels the run’s evaluation gave them', async (t) => {
  const { runDir, cache, evaluated, misclassified } = await trained;
  t.true(misclassified.length >= 5, 'the short run gets some wrong');
  const correct = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    .filter((i) => !misclassified.includes(i))
    .slice(0, 5);
  const indices = [...misclassified.slice(0, 5), ...correct];
  const dir = join(tempDir(), 'digits');
  mkdirSync(dir);
  for (const i of indices) {
    const r = await cli([
      'inspect',
      CONFIG,
      '--split',
      'test',
      '--index',
      String(i),
      '--out',
      join(dir, `test-${i}.png`),
      '--cache',
      cache,
    ]);
    t.is(r.code, 0, r.stderr);
  }
  const r = await cli(['predict', runDir, dir, '--json']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.is(lines.length, 10);
  const byIndex = [...indices].sort((a, b) => a - b);
  for (const [k, line] of lines.entries()) {
    const i = byIndex[k]!; // files in numeric order of their names
    t.is(line.input, join(dir, `test-${i}.png`));
    t.is(line.label, evaluated(i), `test digit ${i}`);
    t.is(line.top[0].label, line.label);
    t.is(line.probabilities.length, 10);
    t.true(Math.abs(line.probabilities.reduce((s: number, p: number) => s + p, 0) - 1) < 1e-4);
  }
  const plain = await cli(['predict', runDir, join(dir, `test-${indices[0]}.png`)]);
  t.regex(plain.stdout, /^\S+test-\d+\.png: \d {2}\(\d 0\.\d{4}, \d 0\.\d{4}, \d 0\.\d{4}\)\n$/);
  t.regex(plain.stderr, /1 example classified by 784 → 32 relu → 10 \(step 250\)/);
});

test('the library: loadModel(runDir).predict(pixels), and a magnified PNG predicts as the digit', async (t) => {
  const { runDir, evaluated } = await trained;
  const model = loadModel(runDir);
  t.deepEqual(model.inputShape, [28, 28]);
  for (const i of [0, 1, 2]) {
    const p = model.predict(testImage(i));
    t.is(p.label, evaluated(i));
    t.deepEqual(
      p.top.map((x) => x.probability),
      [...p.probabilities].sort((a, b) => b - a).slice(0, 3),
    );
  }
  t.throws(() => model.predict(new Uint8Array(100)), {
    message: /100 values for 1 example; the model takes 784/,
  });
  // 3× magnified, as inspect --scale 3 draws it: area averaging gives the digit back exactly
  const big = join(tempDir(), 'big.png');
  const r = await cli(['inspect', CONFIG, '--split', 'test', '--index', '7', '--out', big, '--scale', '3']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(resizeGrey(decodePngGrey(readFileSync(big), big), 28, 28), Uint8Array.from(testImage(7)));
  const predicted = await cli(['predict', runDir, big, '--json']);
  t.is(JSON.parse(predicted.stdout).label, evaluated(7));
});

test('bad inputs: one line each on stderr, the others still classified, exit 1', async (t) => {
  const { runDir } = await trained;
  const dir = tempDir();
  const text = join(dir, 'notes.txt');
  writeFileSync(text, 'not an image');
  const broken = join(dir, 'broken.png');
  const png = new PNG({ width: 28, height: 28 });
  writeFileSync(broken, PNG.sync.write(png).subarray(0, 60));
  const labels = join(MNIST_DIR, 't10k-labels-idx1-ubyte');
  const images = join(MNIST_DIR, 't10k-images-idx3-ubyte');
  const r = await cli(['predict', runDir, join(dir, 'missing.png'), text, broken, labels, images]);
  t.is(r.code, 1);
  const errors = r.stderr.trim().split('\n').slice(0, -1);
  t.deepEqual(errors, [
    `rxtrain: E_INPUT: ${join(dir, 'missing.png')}: cannot read (no such file or directory)`,
    `rxtrain: E_INPUT: ${text}: neither a PNG image nor an IDX file (it starts 6e 6f 74 20)`,
    errors[2]!,
    `rxtrain: E_INPUT: ${labels}: examples of shape [], but the model takes [28, 28]`,
  ]);
  t.regex(errors[2]!, new RegExp(`^rxtrain: E_INPUT: ${broken}: not a readable PNG image \\(.+\\)$`));
  t.regex(r.stderr, /10000 examples classified .*; 4 inputs failed\n$/);
  t.is(r.stdout.split('\n').filter(Boolean).length, 10000, 'every image of the IDX file');
  t.regex(r.stdout, /^\S+t10k-images-idx3-ubyte\[0\]: /);
  const notRun = await cli(['predict', dir, broken]);
  t.is(notRun.code, 2);
  t.is(notRun.stderr, `rxtrain: E_USAGE: ${dir}: no model.json: not a finished run (see rxtrain resume)\n`);
});

/** A PNG of RGBA pixels. */
function png(width: number, height: number, rgba: number[]): Buffer {
  const p = new PNG({ width, height });
  p.data.set(rgba);
  return PNG.sync.write(p);
}

test('PNG to input: luma, alpha over black, area averaging to any size, whole grey levels', (t) => {
  // white, red, green at half alpha, blue: luma 255, 0.299·255, 0.587·255/2, 0.114·255
  const colours = png(2, 2, [255, 255, 255, 255, 255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 255]);
  const grey = decodePngGrey(colours, 'c.png');
  t.deepEqual(
    Array.from(grey.grey, (g) => Number(g.toFixed(3))),
    [255, 76.245, Number(((0.587 * 255 * 128) / 255).toFixed(3)), 29.07],
  );
  t.deepEqual(resizeGrey(grey, 2, 2), Uint8Array.of(255, 76, 75, 29), 'the same size: only rounded');
  t.deepEqual(resizeGrey(grey, 1, 1), Uint8Array.of(Math.round((255 + 76.245 + 75.136 + 29.07) / 4)));
  // a 3-wide row to 2: the middle pixel is split between the two halves
  const row = { width: 3, height: 1, grey: Float64Array.of(0, 90, 180) };
  t.deepEqual(resizeGrey(row, 1, 2), Uint8Array.of(30, 150)); // (0 + 90/2)/1.5, (90/2 + 180)/1.5
  // up: each input pixel covers 2.5 outputs
  t.deepEqual(
    resizeGrey({ width: 2, height: 1, grey: Float64Array.of(0, 100) }, 1, 5),
    Uint8Array.of(0, 0, 50, 100, 100),
  );
  t.throws(() => decodePngGrey(Buffer.from('\x89PNG\r\n\x1a\n garbage'), 'g.png'), {
    message: /^g\.png: not a readable PNG image/,
  });
});
