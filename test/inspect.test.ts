/** `rxtrain inspect`: the label and the picture of one example, checked against the raw IDX bytes. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { PNG } from 'pngjs';
import { main } from '../src/cli.js';
import { FaultServer, serve } from './helpers/faultServer.js';
import { MNIST_DIR, mnistSubset, notebookArchive, ROOT, runCli } from './helpers/index.js';
import { REMOTE_CONFIG, scratchDir } from './helpers/remoteRun.js';

const CONFIG = join(ROOT, 'config/mnist-logreg.yaml');

/** Read the raw files directly (header sizes from the IDX spec), independently of the decoder. */
const rawLabel = (file: string, i: number) => readFileSync(join(MNIST_DIR, file))[8 + i]!;
const rawImage = (file: string, i: number) =>
  readFileSync(join(MNIST_DIR, file)).subarray(16 + i * 784, 16 + (i + 1) * 784);

test('train[122]: the label of the raw labels file, and a PNG holding exactly its pixels', async (t) => {
  const out = join(scratchDir(t), 'digit.png');
  const r = await runCli([
    'inspect',
    CONFIG,
    '--split',
    'train',
    '--index',
    '122',
    '--out',
    out,
    '--scale',
    '3',
  ]);
  t.is(r.code, 0, r.stderr);
  const label = rawLabel('train-labels-idx1-ubyte', 122);
  t.regex(
    r.stdout,
    new RegExp(`^train\\[122\\]: label ${label} \\(28×28, from \\S+train-images-idx3-ubyte\\)\\n`),
  );
  const png = PNG.sync.read(readFileSync(out));
  t.is(png.width, 84);
  t.is(png.height, 84);
  const pixels = rawImage('train-images-idx3-ubyte', 122);
  let same = 0;
  for (let y = 0; y < 84; y++) {
    for (let x = 0; x < 84; x++) {
      const want = pixels[Math.floor(y / 3) * 28 + Math.floor(x / 3)]!;
      const o = 4 * (y * 84 + x);
      if (png.data[o] === want && png.data[o + 1] === want && png.data[o + 2] === want) same++;
    }
  }
  t.is(same, 84 * 84);
});

test('in the terminal: 14 lines of 28 half-block cells; greyscale escapes unless NO_COLOR', async (t) => {
  const plain = await runCli(['inspect', CONFIG, '--split', 'test', '--index', '0'], {
    env: { NO_COLOR: '1' },
  });
  t.is(plain.code, 0, plain.stderr);
  const [head, ...rows] = plain.stdout.slice(0, -1).split('\n'); // rows may end in spaces
  t.is(
    head,
    `test[0]: label ${rawLabel('t10k-labels-idx1-ubyte', 0)} (28×28, from ${join(MNIST_DIR, 't10k-images-idx3-ubyte')})`,
  );
  t.is(rows.length, 14);
  const pixels = rawImage('t10k-images-idx3-ubyte', 0);
  for (const [y, row] of rows.entries()) {
    t.is([...row].length, 28);
    for (const [x, cell] of [...row].entries()) {
      const top = pixels[2 * y * 28 + x]! >= 128;
      const bottom = pixels[(2 * y + 1) * 28 + x]! >= 128;
      t.is(cell, top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ', `cell ${x},${y}`);
    }
  }
  // Piped (not a terminal), even without NO_COLOR: no escape codes.
  const piped = await runCli(['inspect', CONFIG, '--split', 'test', '--index', '0'], {
    env: { NO_COLOR: '' },
  });
  t.false(piped.stdout.includes('\x1b'), 'no escape codes in a pipe');
  // On a terminal: true greyscale.
  let out = '';
  const code = await main(['inspect', CONFIG, '--split', 'test', '--index', '0'], {
    stdout: (text) => {
      out += text;
    },
    stderr: () => {},
    stderrIsTty: true,
    stdoutIsTty: true,
    env: {},
  });
  t.is(code, 0);
  t.regex(out, /\x1b\[38;5;231m/, 'white ink');
  t.regex(out, /\x1b\[48;5;16m/, 'black paper');
});

test('the data stages of a remote config: inspect reads the archive over HTTP', async (t) => {
  const server = await FaultServer.start({ '/MNIST.tar.gz': [serve(await notebookArchive(mnistSubset()))] });
  try {
    const r = await runCli([
      'inspect',
      REMOTE_CONFIG,
      '--split',
      'train',
      '--index',
      '122',
      '--cache',
      scratchDir(t),
      '--set',
      `fetch.url=${server.url('/MNIST.tar.gz')}`,
    ]);
    t.is(r.code, 0, r.stderr);
    t.regex(
      r.stdout,
      new RegExp(`^train\\[122\\]: label ${rawLabel('train-labels-idx1-ubyte', 122)} \\(28×28, from http:`),
    );
  } finally {
    await server.close();
  }
});

test('usage errors: exit 2 and one line', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--split', 'train', '--index', '60000'], /--index 60000: split train has 60000 examples/],
    [['--split', 'val', '--index', '0'], /no split "val" in the data \(splits: .*train.*\)/],
    [['--index', '1'], /needs --split/],
    [['--split', 'train', '--index', 'x'], /--index needs a whole number, not "x"/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(['inspect', CONFIG, ...args]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
    t.is(r.stderr.trimEnd().split('\n').length, 1);
  }
});

test('--out: scaled up 8× by default so a digit can be seen; a name that is not .png is refused', async (t) => {
  const dir = scratchDir(t);
  const out = join(dir, 'digit.png');
  const r = await runCli(['inspect', CONFIG, '--split', 'test', '--index', '0', '--out', out]);
  t.is(r.code, 0, r.stderr);
  const png = PNG.sync.read(readFileSync(out));
  t.deepEqual([png.width, png.height], [224, 224]);
  const jpg = join(dir, 'digit.jpg');
  const refused = await runCli(['inspect', CONFIG, '--split', 'test', '--index', '0', '--out', jpg]);
  t.is(refused.code, 2);
  t.regex(
    refused.stderr,
    /^rxtrain: E_USAGE: --out .*digit\.jpg: inspect writes PNG images; name the file \*\.png\n$/,
  );
  t.false(existsSync(jpg));
});
