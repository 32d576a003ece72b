/**
 * The data-stage cache file on its fast path: one read, a CRC and a structure check instead of a
 * sha256, and views instead of copies. Damage anywhere in the file is caught before a message is
 * trusted; contiguous examples stay one run of bytes from the decoder to the store.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { IdxDecoder } from '../src/formats/idx.js';
import { ExampleStore } from '../src/pipeline/exampleStore.js';
import type { Examples, Message } from '../src/pipeline/messages.js';
import { type CacheFile, CacheWriter, openCacheFile, unpackRecord } from '../src/pipeline/stageCacheFile.js';
import { crc32, crc32Table } from '../src/util/crc32.js';
import { tempDir } from './helpers/index.js';

const dir = tempDir();
const KEY = 'c'.repeat(64);
const renameTo = (from: string, to: string) => {
  renameSync(from, to);
  return to;
};
const WIDTH = 784;

/** `n` examples of split `split` as consecutive views of one block, `per` rows per batch. */
function batches(block: Uint8Array, split: string, n: number, per: number): Examples[] {
  const out: Examples[] = [];
  for (let start = 0; start < n; start += per) {
    const count = Math.min(per, n - start);
    out.push({
      kind: 'examples',
      split,
      start,
      count,
      splitSize: n,
      shape: [28, 28],
      width: WIDTH,
      data: block.subarray(start * WIDTH, (start + count) * WIDTH),
      labels: Int32Array.from({ length: count }, (_, i) => (start + i) % 10),
      classes: 10,
      source: `${split}-images`,
    });
  }
  return out;
}

function writeCache(name: string, messages: Message[]): string {
  const writer = new CacheWriter(dir, {});
  for (const m of messages) writer.append(m);
  const { path } = writer.commit(KEY);
  return renameTo(path, join(dir, name));
}

const replay = (file: CacheFile): Message[] =>
  file.records.flatMap((_, i) => [...unpackRecord(file.bytes(i))]);

const block = Uint8Array.from({ length: 3000 * WIDTH }, (_, i) => (i * 7919) % 251);
const messages: Message[] = [
  ...batches(block.subarray(0, 2000 * WIDTH), 'train', 2000, 333),
  { kind: 'split-end', split: 'train', count: 2000 },
  ...batches(block.subarray(2000 * WIDTH), 'test', 1000, 333),
  { kind: 'split-end', split: 'test', count: 1000 },
];

test('contiguous examples are one record, replayed as views of the one buffer the file was read into', async (t) => {
  const path = writeCache('views.rxdata', messages);
  const file = await openCacheFile(path, KEY);
  if (typeof file === 'string') return t.fail(file);
  t.is(file.records.length, 4, 'train, its end, test, its end');
  const out = replay(file);
  file.close();
  const examples = out.filter((m): m is Examples => m.kind === 'examples');
  t.true(examples.length > 2, 'cut back into batches of about a decoder chunk');
  const buffer = examples[0]!.data.buffer;
  t.true(
    examples.every((e) => e.data.buffer === buffer),
    'no copy per record',
  );
  const store = new ExampleStore('train');
  for (const e of examples.filter((e) => e.split === 'train')) store.add(e);
  t.is(store.count, 2000);
  t.is(store.data.buffer, buffer, 'the store holds the replayed bytes, not a copy');
  t.true(same(store.data, block.subarray(0, 2000 * WIDTH)));
  t.deepEqual([...store.labels.subarray(0, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
});

test('batches in separate buffers (a gunzip’s chunks) are one record too, replayed as one view', async (t) => {
  // Each batch a copy of its own, as zlib hands them out: no two lie one after another.
  const scattered = batches(block.subarray(0, 2000 * WIDTH), 'train', 2000, 333).map((e) => ({
    ...e,
    data: Buffer.from(e.data),
  }));
  const path = writeCache('scattered.rxdata', [
    ...scattered,
    { kind: 'split-end', split: 'train', count: 2000 },
  ]);
  const file = await openCacheFile(path, KEY);
  if (typeof file === 'string') return t.fail(file);
  t.is(file.records.length, 2, 'the examples, then the split end');
  const examples = replay(file).filter((m): m is Examples => m.kind === 'examples');
  file.close();
  const store = new ExampleStore('train');
  for (const e of examples) store.add(e);
  t.is(store.data.buffer, examples[0]!.data.buffer, 'the store keeps the replayed bytes as they are');
  t.true(same(store.data, block.subarray(0, 2000 * WIDTH)));
  t.deepEqual([...store.labels.subarray(0, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
});

test('a store copies once a batch does not continue its view, and keeps every row', (t) => {
  const store = new ExampleStore('train');
  const [a, b, c] = batches(block, 'train', 999, 333);
  store.add(a!);
  store.add(c!); // not where a ends
  store.add(b!);
  t.is(store.count, 999);
  t.not(store.data.buffer, block.buffer);
  t.true(same(store.data.subarray(0, 333 * WIDTH), a!.data));
  t.true(same(store.data.subarray(333 * WIDTH, 666 * WIDTH), c!.data));
  t.true(same(store.data.subarray(666 * WIDTH, 999 * WIDTH), b!.data));
});

const same = (a: ArrayBufferView, b: ArrayBufferView) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function flip(bytes: Buffer, at: number): Buffer {
  bytes[at]! ^= 0x10;
  return bytes;
}

/** Where the first record starts: after the magic, the JSON length and the JSON, padded to 8. */
const firstRecord = (bytes: Buffer) => (8 + 4 + bytes.readUInt32LE(8) + 7) & ~7;

// Every region of the file: magic, header JSON, a record's length, its packed JSON, the pixels,
// the end mark, the CRC itself, the trailer's mark; and a file cut short or grown.
const damages: [string, (bytes: Buffer) => Buffer][] = [
  ['magic', (b) => flip(b, 3)],
  ['header JSON', (b) => flip(b, 20)],
  ['key', (b) => flip(b, b.byteLength - 40)],
  ['first record length', (b) => flip(b, firstRecord(b))],
  ['first record JSON', (b) => flip(b, firstRecord(b) + 12)],
  ['pixel bytes', (b) => flip(b, b.byteLength >> 1)],
  ['end mark', (b) => flip(b, b.byteLength - 80)],
  ['CRC', (b) => flip(b, b.byteLength - 8)],
  ['trailer mark', (b) => flip(b, b.byteLength - 1)],
  ['truncated', (b) => b.subarray(0, b.byteLength - 100)],
  ['extended', (b) => Buffer.concat([b, Buffer.alloc(64)])],
];

for (const [where, damage] of damages) {
  test(`damage to the ${where} is caught before any message is replayed`, async (t) => {
    const path = writeCache(`damaged-${where.replace(/ /g, '-')}.rxdata`, messages);
    writeFileSync(path, damage(readFileSync(path)));
    const result = await openCacheFile(path, KEY);
    t.is(typeof result, 'string', `${where}: ${typeof result === 'string' ? result : 'accepted'}`);
  });
}

test('a file for another key is not used', async (t) => {
  const path = writeCache('other-key.rxdata', messages);
  t.regex((await openCacheFile(path, 'd'.repeat(64))) as string, /holds key/);
  t.is(await openCacheFile(join(dir, 'nothing-here.rxdata'), KEY), 'absent');
});

test('zlib’s CRC-32 and the table fallback agree, also when continued', (t) => {
  const bytes = block.subarray(0, 100_003);
  t.is(crc32(bytes), crc32Table(bytes));
  t.is(crc32(bytes.subarray(500), crc32(bytes.subarray(0, 500))), crc32(bytes));
  t.is(crc32Table(bytes.subarray(500), crc32Table(bytes.subarray(0, 500))), crc32(bytes));
});

test('records cut across chunks of one block decode as views of that block', (t) => {
  const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]);
  const file = new Uint8Array(16 + 10 * WIDTH);
  file.set(header);
  file.set(block.subarray(0, 10 * WIDTH), 16);
  const decoder = new IdxDecoder('f');
  const records = [];
  // 1000-byte chunks: every record but the first starts in one chunk and ends in the next.
  for (let at = 0; at < file.byteLength; at += 1000) {
    const chunk = file.subarray(at, at + 1000);
    const r = decoder.push(chunk);
    if (r) records.push(r);
  }
  decoder.end();
  t.is(
    records.reduce((n, r) => n + r.count, 0),
    10,
  );
  t.true(
    records.every((r) => r.bytes.buffer === file.buffer),
    'views, no copies',
  );
  t.true(same(Buffer.concat(records.map((r) => r.bytes)), block.subarray(0, 10 * WIDTH)));
});

test('a file over the whole-file bound is checked in pieces and replayed record by record, the same', async (t) => {
  const path = writeCache('piecewise.rxdata', messages);
  const whole = await openCacheFile(path, KEY);
  const pieces = await openCacheFile(path, KEY, { wholeFileBytes: 1024 });
  if (typeof whole === 'string' || typeof pieces === 'string') return t.fail(String(whole));
  const a = replay(whole);
  const b = replay(pieces);
  whole.close();
  pieces.close();
  t.is(b.length, a.length);
  const examples = (ms: Message[]) => ms.filter((m): m is Examples => m.kind === 'examples');
  const bytes = (ms: Message[]) => Buffer.concat(examples(ms).map((e) => e.data as Uint8Array));
  t.true(same(bytes(b), bytes(a)));
  t.deepEqual(
    examples(b).map((e) => [e.split, e.start, e.count]),
    examples(a).map((e) => [e.split, e.start, e.count]),
  );
  const damaged = writeCache('piecewise-damaged.rxdata', messages);
  writeFileSync(damaged, flip(readFileSync(damaged), 5000));
  t.regex((await openCacheFile(damaged, KEY, { wholeFileBytes: 1024 })) as string, /CRC/);
});
