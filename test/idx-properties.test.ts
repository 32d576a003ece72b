/**
 * Property-based tests of the IDX decoder and the decodeIdx stage: valid files of every dtype and
 * rank round-trip under any chunking; random, mutated and truncated files, and headers that lie,
 * end in a typed error or a consistent decode — never another exception, a hang or a large
 * allocation.
 */
import test from 'ava';
import fc from 'fast-check';
import { fromArray } from '../src/flow/index.js';
import { encodeIdx, IDX_DTYPES, IdxDecoder, type IdxDtype, idxValues } from '../src/formats/idx.js';
import type { FileChunk, Message } from '../src/pipeline/messages.js';
import { decodeIdxSettings, decodeIdxStage } from '../src/stages/decodeIdx.js';
import { RxtrainError } from '../src/util/errors.js';
import { collect } from './helpers/index.js';
import { stageContext } from './helpers/stageContext.js';

const dtypes = Object.values(IDX_DTYPES).map((d) => d.name) as IdxDtype[];

/** A valid IDX file: its dtype, dims (rank 1–4, small) and values representable in the dtype. */
const idxFile = fc
  .record({
    dtype: fc.constantFrom(...dtypes),
    dims: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
    count: fc.integer({ min: 0, max: 5 }),
  })
  .chain(({ dtype, dims, count }) => {
    const shape = [count, ...dims.slice(1)];
    const n = shape.reduce((a, b) => a * b, 1);
    const value = {
      u8: fc.integer({ min: 0, max: 255 }),
      i8: fc.integer({ min: -128, max: 127 }),
      i16: fc.integer({ min: -32768, max: 32767 }),
      i32: fc.integer({ min: -(2 ** 24), max: 2 ** 24 }), // exact in float32
      f32: fc.float({ noNaN: true, noDefaultInfinity: true }),
      f64: fc.float({ noNaN: true, noDefaultInfinity: true }), // float32 values survive the float32 output
    }[dtype];
    return fc.record({
      dtype: fc.constant(dtype),
      shape: fc.constant(shape),
      values: fc.array(value, { minLength: n, maxLength: n }),
    });
  });

/** Cut points for feeding bytes in pieces. */
const chunking = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 });

function* pieces(data: Uint8Array, sizes: number[]): Generator<Uint8Array> {
  let o = 0;
  for (let i = 0; o < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(o, o + n);
    o += n;
  }
}

/** Decode with the incremental decoder; the result, or the error it threw. */
function decode(data: Uint8Array, sizes: number[]) {
  const decoder = new IdxDecoder('f');
  const records: Uint8Array[] = [];
  try {
    for (const piece of pieces(data, sizes)) {
      const r = decoder.push(piece);
      if (r) records.push(r.bytes);
    }
    decoder.end();
  } catch (error) {
    return { error, decoder };
  }
  return { decoder, records };
}

test('valid files of every dtype and rank 1–4 round-trip under any chunking', (t) => {
  fc.assert(
    fc.property(idxFile, chunking, ({ dtype, shape, values }, sizes) => {
      const file = encodeIdx(dtype, shape, values);
      const result = decode(file, sizes);
      if ('error' in result) return false;
      const h = result.decoder.header!;
      const body = Buffer.concat(result.records);
      const decoded = Array.from(idxValues(h, new Uint8Array(body)));
      return (
        h.dtype === dtype &&
        h.dims.join() === shape.join() &&
        decoded.length === values.length &&
        decoded.every((v, i) => v === Math.fround(values[i]!))
      );
    }),
    { numRuns: 300 },
  );
  t.pass();
});

/** Damage a file: overwrite bytes, truncate, append, or rewrite the header with random bytes. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('header' as const), header: fc.uint8Array({ minLength: 4, maxLength: 20 }) }),
);

function mutate(file: Uint8Array, m: MutationValue): Uint8Array {
  const out = Uint8Array.from(file);
  switch (m.kind) {
    case 'set':
      if (out.length) out[m.at % out.length] = m.value;
      return out;
    case 'truncate':
      return out.subarray(0, m.at % (out.length + 1));
    case 'append':
      return Buffer.concat([out, m.extra]);
    case 'header':
      out.set(m.header.subarray(0, out.length));
      return out;
  }
}
type MutationValue =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; extra: Uint8Array }
  | { kind: 'header'; header: Uint8Array };

test('mutated, truncated and random files give a consistent decode or a typed error, nothing else', (t) => {
  const input = fc.oneof(
    fc
      .tuple(idxFile, fc.array(mutation, { minLength: 1, maxLength: 3 }))
      .map(([f, ms]) =>
        ms.reduce<Uint8Array>(
          (file, m) => mutate(file, m as MutationValue),
          encodeIdx(f.dtype, f.shape, f.values),
        ),
      ),
    fc.uint8Array({ maxLength: 64 }),
    // Random bytes behind a plausible start, so the header parser goes further.
    fc
      .uint8Array({ maxLength: 64 })
      .map((b) => Buffer.concat([Uint8Array.from([0, 0, 8, 1 + ((b[0] ?? 0) % 4)]), b])),
  );
  fc.assert(
    fc.property(input, chunking, (file, sizes) => {
      const before = process.memoryUsage().arrayBuffers;
      const result = decode(file, sizes);
      // Whatever the header claimed, what the decoder holds is bounded by what it was given.
      if (process.memoryUsage().arrayBuffers - before > 1 << 20) return false;
      if ('error' in result) return result.error instanceof RxtrainError;
      const h = result.decoder.header!;
      return result.decoder.received === file.length && h.fileBytes === file.length;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

/** Run the decodeIdx stage over an images and a labels file; resolve with what happened. */
async function runStage(images: Uint8Array, labels: Uint8Array, sizes: number[], order: boolean) {
  const chunks: FileChunk[] = [];
  const files: [string, Uint8Array][] = [
    ['raw/labels', labels],
    ['raw/images', images],
  ];
  for (const [file, data] of order ? files : files.reverse()) {
    let offset = 0;
    for (const piece of pieces(data, sizes)) {
      chunks.push({ kind: 'bytes', file, source: file, offset, bytes: piece, last: false });
      offset += piece.length;
    }
    chunks.push({ kind: 'bytes', file, source: file, offset, bytes: new Uint8Array(0), last: true });
  }
  const settings = decodeIdxSettings.parse({
    splits: { train: { images: '**/images', labels: '**/labels' } },
    classes: 256,
  });
  const flow = decodeIdxStage.create(settings, stageContext('decodeIdx'))(fromArray<Message>(chunks));
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), 2000);
  });
  try {
    return await Promise.race([
      collect(flow).then(
        (items) => ({ items }),
        (error: unknown) => ({ error }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test('the decodeIdx stage, given damaged image and label files in any order, completes or fails with a typed error', async (t) => {
  const pair = fc
    .record({ count: fc.integer({ min: 0, max: 4 }), side: fc.integer({ min: 1, max: 3 }) })
    .chain(({ count, side }) =>
      fc.record({
        images: fc
          .uint8Array({ minLength: count * side * side, maxLength: count * side * side })
          .map((v) => encodeIdx('u8', [count, side, side], v)),
        labels: fc.uint8Array({ minLength: count, maxLength: count }).map((v) => encodeIdx('u8', [count], v)),
      }),
    );
  await fc.assert(
    fc.asyncProperty(
      pair,
      fc.option(mutation, { nil: undefined }),
      fc.option(mutation, { nil: undefined }),
      chunking,
      fc.boolean(),
      async ({ images, labels }, mi, ml, sizes, order) => {
        const result = await runStage(
          mi ? mutate(images, mi as MutationValue) : images,
          ml ? mutate(labels, ml as MutationValue) : labels,
          sizes,
          order,
        );
        if (result === 'hang') return false;
        if ('error' in result) return result.error instanceof RxtrainError;
        // Success: every example arrived once, then split-end.
        const end = result.items.at(-1);
        return end?.kind === 'split-end';
      },
    ),
    { numRuns: 400 },
  );
  t.pass();
});
