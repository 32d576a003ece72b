/**
 * Fixed-size binary records (CIFAR-10's layout) through decodeRecords: any chunking decodes the
 * same, a split spans its files in order, a short record or a label out of range is one error
 * naming the file and the byte offset — also through the CLI, as one line — and normalise
 * standardises each colour channel with the training split's statistics.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { fromArray } from '../src/flow/index.js';
import { encodeRecords, RecordDecoder } from '../src/formats/records.js';
import type { Examples, Features, Message } from '../src/pipeline/messages.js';
import { decodeRecordsSettings, decodeRecordsStage } from '../src/stages/decodeRecords.js';
import { normaliseSettings, normaliseStage } from '../src/stages/normalise.js';
import { RecordError, RxtrainError } from '../src/util/errors.js';
import { collect, makeTar, runCli } from './helpers/index.js';
import { scratchDir } from './helpers/remoteRun.js';
import { fileChunks, stageContext } from './helpers/stageContext.js';

/** n records of 1 label byte + 2×2×2 values: value j of record i is 10·i + j. */
function records(labels: number[], first = 0): Uint8Array {
  const values = Uint8Array.from(
    { length: labels.length * 8 },
    (_, k) => 10 * (first + Math.floor(k / 8)) + (k % 8),
  );
  return encodeRecords(labels, values);
}

const SHAPE = [2, 2, 2];

function decode(files: [string, Uint8Array][], settings: Record<string, unknown> = {}, chunk = 5) {
  const parsed = decodeRecordsSettings.parse({
    splits: { train: ['**/a.bin', '**/b.bin'], test: ['**/t.bin'] },
    shape: SHAPE,
    classes: 10,
    ...settings,
  });
  const chunks = files.flatMap(([file, data]) => fileChunks(file, data, chunk));
  return collect<Message>(
    decodeRecordsStage.create(parsed, stageContext('decodeRecords'))(fromArray<Message>(chunks)),
  );
}

test('RecordDecoder: every chunking gives the same records; the chosen label byte is the label', (t) => {
  const layout = { labelBytes: 2, labelByte: 1, valueBytes: 3 };
  const file = Uint8Array.from([9, 1, 10, 11, 12, 9, 2, 20, 21, 22, 9, 3, 30, 31, 32]);
  for (let size = 1; size <= file.length; size++) {
    const decoder = new RecordDecoder('f', layout);
    const labels: number[] = [];
    const values: number[] = [];
    for (let o = 0; o < file.length; o += size) {
      const r = decoder.push(file.subarray(o, o + size));
      if (r) {
        t.is(r.start, labels.length);
        labels.push(...r.labels);
        values.push(...r.values);
      }
    }
    decoder.end();
    t.deepEqual(labels, [1, 2, 3], `chunks of ${size}`);
    t.deepEqual(values, [10, 11, 12, 20, 21, 22, 30, 31, 32]);
  }
});

test('a split spans its files in order; other files are dropped; split-end after the last', async (t) => {
  const out = await decode([
    ['x/a.bin', records([1, 2, 3])],
    ['x/readme.html', new TextEncoder().encode('<html>')],
    ['x/b.bin', records([4, 5], 3)],
    ['x/t.bin', records([6])],
  ]);
  const train = out.filter((m): m is Examples => m.kind === 'examples' && m.split === 'train');
  t.deepEqual(
    train.map((e) => e.start),
    train.map((_, i) => train.slice(0, i).reduce((n, e) => n + e.count, 0)),
  );
  t.deepEqual(
    train.flatMap((e) => Array.from(e.labels)),
    [1, 2, 3, 4, 5],
  );
  const values = train.flatMap((e) => Array.from(e.data));
  t.deepEqual(values.slice(8 * 3, 8 * 3 + 3), [30, 31, 32], 'record 3 is b.bin’s first');
  t.deepEqual(train[0]!.shape, SHAPE);
  t.is(train[0]!.splitSize, undefined, 'records say nothing of the split’s size in advance');
  const ends = out.filter((m) => m.kind === 'split-end');
  t.deepEqual(ends, [
    { kind: 'split-end', split: 'train', count: 5 },
    { kind: 'split-end', split: 'test', count: 1 },
  ]);
  t.true(out.indexOf(ends[0]!) > out.indexOf(train.at(-1)!), 'train ends after its last batch');
});

test('a short record and a label out of range name the file and the byte offset', async (t) => {
  const R = 9;
  const short = await t.throwsAsync(
    decode([
      ['x/a.bin', records([1, 2, 3]).subarray(0, 2 * R + 4)],
      ['x/b.bin', records([4])],
      ['x/t.bin', records([6])],
    ]),
    { instanceOf: RecordError },
  );
  t.is(short?.code, 'E_RECORD_SHORT');
  t.is(short?.file, 'src/x/a.bin');
  t.is(short?.offset, 2 * R);
  t.regex(
    short?.message ?? '',
    /^src\/x\/a\.bin: byte 18: record 2 is short: the file ends after 4 of its 9 bytes/,
  );

  const label = await t.throwsAsync(decode([['x/a.bin', records([1, 2, 3, 10, 4])]]), {
    instanceOf: RecordError,
  });
  t.is(label?.code, 'E_RECORD_LABEL');
  t.is(label?.offset, 3 * R);
  t.regex(label?.message ?? '', /label 10 of example 3 is outside \[0, 10\) \(decodeRecords\.classes\)/);

  const missing = await t.throwsAsync(decode([['x/a.bin', records([1])]]), { instanceOf: RxtrainError });
  t.is(missing?.code, 'E_RECORD_MISSING');
  t.regex(
    missing?.message ?? '',
    /no file matches train \*\*\/b\.bin, test \*\*\/t\.bin; files seen: x\/a\.bin/,
  );
});

test('classes: auto waits for the train files, then checks every split against them', async (t) => {
  const out = await decode(
    [
      ['x/t.bin', records([2])],
      ['x/a.bin', records([0, 1])],
      ['x/b.bin', records([3])],
    ],
    { classes: 'auto' },
  );
  const examples = out.filter((m): m is Examples => m.kind === 'examples');
  t.true(examples.every((e) => e.classes === 4));
  const error = await t.throwsAsync(
    decode(
      [
        ['x/t.bin', records([5])],
        ['x/a.bin', records([0, 1])],
        ['x/b.bin', records([3])],
      ],
      { classes: 'auto' },
    ),
    { instanceOf: RecordError },
  );
  t.is(error?.file, 'src/x/t.bin');
  t.is(error?.offset, 0);
});

test('normalise per-channel: each channel standardised with the training split’s statistics', async (t) => {
  // Two channels of 1×2 values; train has two examples, test one (not counted).
  const train: Examples = {
    kind: 'examples',
    split: 'train',
    start: 0,
    count: 2,
    shape: [2, 1, 2],
    width: 4,
    data: Uint8Array.from([0, 2, 10, 10, 4, 6, 30, 30]),
    labels: Int32Array.from([0, 1]),
    classes: 2,
    source: 's',
  };
  const test_: Examples = { ...train, split: 'test', count: 1, data: Uint8Array.from([200, 200, 200, 200]) };
  const settings = normaliseSettings.parse({ scale: 1, standardise: 'per-channel', bias: false });
  const out = await collect<Message>(
    normaliseStage.create(
      settings,
      stageContext('normalise'),
    )(fromArray<Message>([test_, train, { kind: 'split-end', split: 'train', count: 2 }])),
  );
  const features = out.find((m): m is Features => m.kind === 'features')!.transform;
  // channel 0: 0, 2, 4, 6 → mean 3, std √5; channel 1: 10, 10, 30, 30 → mean 20, std 10
  const s0 = 1 / Math.sqrt(5);
  t.deepEqual(Array.from(features.scale), [s0, s0, 0.1, 0.1].map(Math.fround));
  t.deepEqual(Array.from(features.shift!), [-3 * s0, -3 * s0, -2, -2].map(Math.fround));
  // Fixed values per channel, and a list that does not fit the channels.
  const fixed = normaliseSettings.parse({ scale: 1, standardise: 'per-channel', mean: [1, 2], std: [2, 4] });
  const out2 = await collect<Message>(
    normaliseStage.create(fixed, stageContext('normalise'))(fromArray<Message>([train])),
  );
  const t2 = out2.find((m): m is Features => m.kind === 'features')!.transform;
  t.deepEqual(Array.from(t2.shift!), [-0.5, -0.5, -0.5, -0.5]);
  t.deepEqual(Array.from(t2.scale), [0.5, 0.5, 0.25, 0.25]);
  const three = normaliseSettings.parse({ standardise: 'per-channel', mean: [1, 2, 3], std: [1, 1, 1] });
  await t.throwsAsync(
    collect(normaliseStage.create(three, stageContext('normalise'))(fromArray<Message>([train]))),
    {
      message: 'normalise.mean gives 3 values, but the examples have 2 channels',
    },
  );
  t.throws(() => normaliseSettings.parse({ standardise: 'global', mean: [1, 2], std: [1, 1] }), {
    message: /a mean and std per channel need standardise: per-channel/,
  });
});

test('rxtrain run on a corrupt CIFAR-style archive: one line naming the file and byte offset, exit 1', async (t) => {
  const root = scratchDir(t);
  const R = 3073;
  const batch = (labels: number[]) => encodeRecords(labels, new Uint8Array(labels.length * 3072).fill(7));
  const good = Object.fromEntries([1, 2, 3, 4, 5].map((k) => [`data_batch_${k}.bin`, batch([0, 1, 2])]));
  const cases = [
    { name: 'short', files: { ...good, 'data_batch_3.bin': batch([0, 1, 2]).subarray(0, 2 * R + 100) } },
    { name: 'label', files: { ...good, 'data_batch_2.bin': batch([0, 1, 12]) } },
  ];
  const expected = {
    short:
      /^rxtrain: E_RECORD_SHORT: \S+cifar\.tar\.gz!\/cifar-10-batches-bin\/data_batch_3\.bin: byte 6146: record 2 is short/,
    label:
      /^rxtrain: E_RECORD_LABEL: \S+cifar\.tar\.gz!\/cifar-10-batches-bin\/data_batch_2\.bin: byte 6146: label 12 of example 2 is outside \[0, 10\)/,
  };
  for (const c of cases) {
    const entries = Object.entries({ ...c.files, 'test_batch.bin': batch([3]) }).map(([name, data]) => ({
      name: `cifar-10-batches-bin/${name}`,
      data,
    }));
    const archive = await makeTar(entries);
    const path = join(root, `${c.name}-cifar.tar.gz`);
    writeFileSync(path, archive);
    const md5 = createHash('md5').update(archive).digest('hex');
    const result = await runCli([
      'run',
      'config/cifar10-logreg.yaml',
      '--quiet',
      '--cache',
      join(root, 'cache'),
      '--run-dir',
      join(root, c.name),
      '--set',
      `fetch.url=${path}`,
      '--set',
      `fetch.md5="${md5}"`,
    ]);
    t.is(result.code, 1, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0]!, expected[c.name as keyof typeof expected]);
  }
});
