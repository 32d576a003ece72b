import { DEFAULT_SYNTH, type SynthSpec, writeSynthDataset } from '../formats/synth.js';
import { RxtrainError } from '../util/errors.js';
import { type Command, exactlyOne } from './command.js';

export const synthCommand: Command = {
  name: 'synth',
  help: `Usage: rxtrain synth <out> [--train N] [--test N] [--seed S] [options]

Writes IDX files named like MNIST's (train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) into the directory <out>, or one archive when
<out> ends in .tar, .tar.gz or .tgz. Each class is a few soft blobs of pixels at seeded places;
examples are shifted, scaled and noisy copies, learnable by a linear model. Streamed to disk in
bounded memory; the same seed writes the same bytes. Point a config at it with
  fetch: { url: <out> }   (the default decodeIdx globs find the files)
Other layouts: EMNIST's (--prefix emnist-balanced --transpose [--gzip]), Fashion-MNIST's and
KMNIST's (--gzip), CIFAR-10's binary records (--layout cifar; an archive holds them under
cifar-10-batches-bin/, as cifar-10-binary.tar.gz does).

  --train N      training examples (default ${DEFAULT_SYNTH.train}; 5,200,000 makes 4.08 GB of images)
  --test N       test examples (default ${DEFAULT_SYNTH.test}; 0 writes no test files)
  --seed S       seed (default ${DEFAULT_SYNTH.seed})
  --classes C    number of classes, 2–256 (default ${DEFAULT_SYNTH.classes})
  --size RxC     image size (default ${DEFAULT_SYNTH.rows}x${DEFAULT_SYNTH.cols})
  --jitter P     largest shift from the class prototype in pixels (default ${DEFAULT_SYNTH.jitter})
  --noise G      largest noise on an inked pixel in grey levels (default ${DEFAULT_SYNTH.noise})
  --layout L     idx (default) or cifar: records of 1 label byte + C×H×W pixels, channels first
  --channels C   cifar: channels per image (default 3)
  --per-file N   cifar: training records per data_batch_<k>.bin (default ${DEFAULT_SYNTH.perFile})
  --transpose    idx: store each image transposed, as EMNIST does (decodeIdx.transpose reads it)
  --gzip         idx: gzip each file (name.gz), into a directory
  --prefix NAME  idx: name files NAME-train-… and NAME-test-… (EMNIST's names) instead of MNIST's
  --quiet        no progress on stderr`,
  options: {
    train: { type: 'string' },
    test: { type: 'string' },
    seed: { type: 'string' },
    classes: { type: 'string' },
    size: { type: 'string' },
    jitter: { type: 'string' },
    noise: { type: 'string' },
    layout: { type: 'string' },
    channels: { type: 'string' },
    'per-file': { type: 'string' },
    transpose: { type: 'boolean' },
    gzip: { type: 'boolean' },
    prefix: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const out = exactlyOne(positionals, 'synth <out-dir | out.tar | out.tar.gz>');
    const spec = specFromOptions(values);
    const started = performance.now();
    let shown = -1;
    const result = await writeSynthDataset(out, spec, (p) => {
      const percent = Math.floor((100 * p.written) / p.total / 10) * 10;
      if (values.quiet || percent === shown) return;
      shown = percent;
      io.stderr(`synth: ${percent}% (${p.file})\n`);
    });
    const seconds = (performance.now() - started) / 1000;
    io.stdout(
      `wrote ${out} (${result.format}): ${spec.train.toLocaleString('en-US')} train and ${spec.test.toLocaleString('en-US')} test examples of ${spec.channels > 1 ? `${spec.channels}×` : ''}${spec.rows}×${spec.cols}, ${spec.classes} classes, ${result.bytes.toLocaleString('en-US')} bytes of ${spec.layout === 'cifar' ? 'records' : 'IDX'}${spec.gzip ? ' before gzip' : ''} in ${seconds.toFixed(1)}s\n`,
    );
    return 0;
  },
};

/** Options → a spec; every bad option is reported in one line. */
export function specFromOptions(values: Record<string, unknown>): SynthSpec {
  const spec: SynthSpec = { ...DEFAULT_SYNTH };
  const problems: string[] = [];
  const integer = (
    key: 'train' | 'test' | 'seed' | 'classes' | 'jitter' | 'noise' | 'channels' | 'perFile',
  ) => {
    const option = key === 'perFile' ? 'per-file' : key;
    const text = values[option];
    if (text === undefined) return;
    const n = Number(String(text).replace(/_/g, ''));
    if (!Number.isInteger(n)) problems.push(`--${option} expects an integer, got "${text}"`);
    else spec[key] = n;
  };
  if (values.layout !== undefined) {
    if (values.layout === 'idx' || values.layout === 'cifar') spec.layout = values.layout;
    else problems.push(`--layout expects idx or cifar, got "${values.layout}"`);
  }
  if (spec.layout === 'cifar') spec.channels = 3;
  for (const key of ['train', 'test', 'seed', 'classes', 'jitter', 'noise', 'channels', 'perFile'] as const)
    integer(key);
  spec.transpose = values.transpose === true;
  spec.gzip = values.gzip === true;
  if (values.prefix !== undefined) spec.prefix = String(values.prefix);
  if (values.size !== undefined) {
    const m = /^(\d+)x(\d+)$/i.exec(String(values.size));
    if (!m) problems.push(`--size expects ROWSxCOLS such as 28x28, got "${values.size}"`);
    else {
      spec.rows = Number(m[1]);
      spec.cols = Number(m[2]);
    }
  }
  if (problems.length > 0) throw new RxtrainError('E_USAGE', `synth: ${problems.join('; ')}`);
  return spec;
}
