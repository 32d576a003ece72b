import test, { type ExecutionContext } from 'ava';
import { fromArray } from '../src/flow/index.js';
import { IdxDecoder, type IdxDtype, idxIntegers, idxValues, parseIdxHeader } from '../src/formats/idx.js';
import type { Examples, Message } from '../src/pipeline/messages.js';
import { decodeIdxSettings, decodeIdxStage } from '../src/stages/decodeIdx.js';
import { type ErrorCode, IdxError } from '../src/util/errors.js';
import { collect } from './helpers/index.js';
import { fileChunks, stageContext } from './helpers/stageContext.js';

/** Bytes written out by hand, so the decoder is checked against the spec, not against encodeIdx. */
const bytes = (...values: number[]) => Uint8Array.from(values);

function decodeAll(file: Uint8Array, chunk = 3) {
  const decoder = new IdxDecoder('f');
  const parts: Uint8Array[] = [];
  for (let i = 0; i < file.length; i += chunk) {
    const r = decoder.push(file.subarray(i, i + chunk));
    if (r) parts.push(r.bytes);
  }
  decoder.end();
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    body.set(p, o);
    o += p.length;
  }
  return { header: decoder.header!, body };
}

test('every IDX dtype decodes big-endian, whatever the chunking', (t) => {
  const cases: [IdxDtype, Uint8Array, number[]][] = [
    ['u8', bytes(0, 0, 0x08, 1, 0, 0, 0, 2, 0, 255), [0, 255]],
    ['i8', bytes(0, 0, 0x09, 1, 0, 0, 0, 2, 0x80, 0x7f), [-128, 127]],
    ['i16', bytes(0, 0, 0x0b, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x02), [-2, 258]],
    ['i32', bytes(0, 0, 0x0c, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4), [-1, 0x01020304]],
    ['f32', bytes(0, 0, 0x0d, 1, 0, 0, 0, 2, 0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0), [1.5, -2]],
    [
      'f64',
      bytes(0, 0, 0x0e, 1, 0, 0, 0, 1, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a),
      [Math.fround(0.1)],
    ],
  ];
  for (const [dtype, file, expected] of cases) {
    for (const chunk of [1, 2, 5, 100]) {
      const { header, body } = decodeAll(file, chunk);
      t.is(header.dtype, dtype);
      t.deepEqual(Array.from(idxValues(header, body)), expected, `${dtype} in chunks of ${chunk}`);
    }
  }
  const { header, body } = decodeAll(bytes(0, 0, 0x0b, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x02));
  t.deepEqual(Array.from(idxIntegers(header, body)), [-2, 258]);
});

test('ranks 1 to 4: the first dimension counts records, the rest shape each record', (t) => {
  const rank4 = bytes(
    0,
    0,
    8,
    4,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    3,
    ...Array.from({ length: 12 }, (_, i) => i),
  );
  const { header, body } = decodeAll(rank4);
  t.deepEqual(header.dims, [2, 1, 2, 3]);
  t.deepEqual(header.recordShape, [1, 2, 3]);
  t.is(header.recordBytes, 6);
  t.is(header.headerBytes, 20);
  t.deepEqual(
    Array.from(body),
    Array.from({ length: 12 }, (_, i) => i),
  );
  t.deepEqual(parseIdxHeader(bytes(0, 0, 8, 1, 0, 0, 0, 7), 'f')!.recordShape, []);
});

function idxError(t: ExecutionContext, fn: () => unknown, code: ErrorCode, offset: number) {
  const error = t.throws(fn, { instanceOf: IdxError });
  t.is(error?.code, code, error?.message);
  t.is(error?.offset, offset, error?.message);
  t.is(error?.file, 'f');
  t.regex(error?.message ?? '', new RegExp(`^f: byte ${offset}: `));
}

test('malformed headers are typed errors naming the file and byte offset', (t) => {
  idxError(t, () => parseIdxHeader(bytes(1, 0, 8, 1), 'f'), 'E_IDX_MAGIC', 0);
  idxError(t, () => parseIdxHeader(bytes(0, 0, 0x0a, 1), 'f'), 'E_IDX_DTYPE', 2);
  idxError(t, () => parseIdxHeader(bytes(0, 0, 8, 0), 'f'), 'E_IDX_RANK', 3);
  idxError(t, () => parseIdxHeader(bytes(0, 0, 8, 5), 'f'), 'E_IDX_RANK', 3);
  idxError(
    t,
    () => parseIdxHeader(bytes(0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3), 'f'),
    'E_IDX_SHAPE',
    8,
  );
  idxError(
    t,
    () => parseIdxHeader(bytes(0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0), 'f'),
    'E_IDX_SHAPE',
    12,
  );
  // 1 × 65536 × 65536 bytes per record: refused from the header alone.
  idxError(
    t,
    () => parseIdxHeader(bytes(0, 0, 8, 3, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0), 'f'),
    'E_IDX_SHAPE',
    8,
  );
});

test('short reads and trailing data are typed errors at the right offset', (t) => {
  const short = new IdxDecoder('f');
  short.push(bytes(0, 0, 8, 1, 0, 0, 0, 3, 7, 8));
  idxError(t, () => short.end(), 'E_IDX_TRUNCATED', 10);
  const inHeader = new IdxDecoder('f');
  inHeader.push(bytes(0, 0, 8, 2, 0, 0));
  idxError(t, () => inHeader.end(), 'E_IDX_TRUNCATED', 6);
  idxError(t, () => new IdxDecoder('f').end(), 'E_IDX_TRUNCATED', 0);
  const long = new IdxDecoder('f');
  idxError(t, () => long.push(bytes(0, 0, 8, 1, 0, 0, 0, 2, 7, 8, 9)), 'E_IDX_TRAILING', 10);
});

test('a header claiming billions of huge records allocates nothing until the bytes arrive', (t) => {
  // 4,294,967,295 records of 15 MiB each, followed by 100 bytes.
  const decoder = new IdxDecoder('f');
  const before = process.memoryUsage().arrayBuffers;
  decoder.push(
    bytes(0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x1e, 0, 0, 0, 0x08, 0, ...new Array(100).fill(1)),
  );
  t.true(process.memoryUsage().arrayBuffers - before < 1 << 20);
  t.throws(() => decoder.end(), { instanceOf: IdxError, message: /file ends early/ });
});

/** Feed IDX files to the decodeIdx stage as byte chunks. */
function runDecode(files: Record<string, Uint8Array>, settings: Record<string, unknown> = {}) {
  const chunks = Object.entries(files).flatMap(([file, data]) => fileChunks(file, data, 7));
  const parsed = decodeIdxSettings.parse({
    splits: { train: { images: '**/images', labels: '**/labels' } },
    ...settings,
  });
  return collect<Message>(
    decodeIdxStage.create(parsed, stageContext('decodeIdx'))(fromArray<Message>(chunks)),
  );
}

const labels = (...values: number[]) => bytes(0, 0, 8, 1, 0, 0, 0, values.length, ...values);
const images2x2 = (n: number) =>
  bytes(0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 2, 0, 0, 0, 2, ...new Array(4 * n).fill(9));

test('decodeIdx pairs images with labels and reports every disagreement with file and offset', async (t) => {
  const out = await runDecode({ 'd/labels': labels(1, 2, 3), 'd/images': images2x2(3) });
  const examples = out.filter((m): m is Examples => m.kind === 'examples');
  t.deepEqual(
    examples.flatMap((e) => Array.from(e.labels)),
    [1, 2, 3],
  );
  t.deepEqual(examples[0]!.shape, [2, 2]);
  t.is(out.at(-1)!.kind, 'split-end');

  const count = await t.throwsAsync(runDecode({ 'd/labels': labels(1, 2), 'd/images': images2x2(3) }), {
    instanceOf: IdxError,
  });
  t.is(count?.code, 'E_IDX_COUNT');
  t.is(count?.file, 'src/d/labels');
  t.is(count?.offset, 4);

  const range = await t.throwsAsync(
    runDecode({ 'd/labels': labels(1, 10, 3), 'd/images': images2x2(3) }, { classes: 10 }),
    { instanceOf: IdxError },
  );
  t.is(range?.code, 'E_IDX_LABEL');
  t.is(range?.offset, 9);
  t.regex(range?.message ?? '', /label 10 of example 1 is outside \[0, 10\)/);

  const floats = bytes(0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0);
  const dtype = await t.throwsAsync(runDecode({ 'd/labels': floats, 'd/images': images2x2(1) }), {
    instanceOf: IdxError,
  });
  t.is(dtype?.code, 'E_IDX_DTYPE');

  const short = await t.throwsAsync(
    runDecode({ 'd/labels': labels(1, 2), 'd/images': images2x2(2).subarray(0, 20) }),
    {
      instanceOf: IdxError,
    },
  );
  t.is(short?.code, 'E_IDX_TRUNCATED');
  t.is(short?.file, 'src/d/images');
  t.is(short?.offset, 20);
});

test('wider dtypes reach the examples as float32 values', async (t) => {
  const i16Images = bytes(0, 0, 0x0b, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x02);
  const out = await runDecode({ 'd/labels': labels(4), 'd/images': i16Images });
  const ex = out.find((m): m is Examples => m.kind === 'examples')!;
  t.true(ex.data instanceof Float32Array);
  t.deepEqual(Array.from(ex.data), [-2, 258]);
  t.deepEqual(ex.shape, [2]);
});
