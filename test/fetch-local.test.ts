/**
 * fetch's local side: files read whole in blocks, several at once, exactly the bytes on disk; and
 * which local sources are worth the data-stage cache (plain files are not: they are read directly).
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { emptyFlow, fromFileBlocks } from '../src/flow/index.js';
import type { FileChunk, Message } from '../src/pipeline/messages.js';
import { fetchSettings, fetchStage, localReadAhead, MOST_READ_AHEAD } from '../src/stages/fetch.js';
import { builtinStages } from '../src/stages/index.js';
import { RxtrainError } from '../src/util/errors.js';
import {
  collect,
  MNIST_DIR,
  mnistSubset,
  notebookArchive,
  subscribeManually,
  tempDir,
} from './helpers/index.js';
import { stageContext } from './helpers/stageContext.js';

const root = tempDir();
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const worth = (settings: Record<string, unknown>) =>
  fetchStage.worthCaching!(fetchSettings.parse(settings), stageContext('fetch', { baseDir: root }));

test('only sources that cost something to read are worth the data-stage cache', async (t) => {
  const plain = join(root, 'plain');
  mkdirSync(plain);
  const subset = mnistSubset(300, 100);
  for (const [name, bytes] of Object.entries(subset)) writeFileSync(join(plain, name), bytes);
  t.false(await worth({ url: 'embedded:mnist' }), 'the embedded raw IDX files');
  t.false(await worth({ url: plain }), 'a directory of raw IDX files');
  t.false(await worth({ url: join(plain, 'train-labels-idx1-ubyte') }), 'one raw file');

  const mixed = join(root, 'mixed');
  mkdirSync(mixed);
  for (const [name, bytes] of Object.entries(subset)) writeFileSync(join(mixed, name), bytes);
  writeFileSync(join(mixed, 'train-images-idx3-ubyte.gz'), gzipSync(subset['train-images-idx3-ubyte']!));
  t.true(await worth({ url: mixed }), 'a gzipped file among them');
  t.false(await worth({ url: mixed, files: ['*-ubyte'] }), 'unless `files` leaves it out');
  // Told by their bytes, as untar tells them, not by their names.
  writeFileSync(join(root, 'archive.bin'), await notebookArchive(subset));
  t.true(await worth({ url: join(root, 'archive.bin') }), 'a tar.gz whatever its name');

  t.true(await worth({ url: 'http://127.0.0.1:9/MNIST.tar.gz' }), 'a download');
  t.true(await worth({ url: plain, mirrors: [plain] }), 'mirrors');
  t.true(
    await worth({ url: join(plain, 't10k-labels-idx1-ubyte'), sha256: 'ab'.repeat(32) }),
    'a checksum to verify on every read',
  );
  t.true(await worth({ url: join(root, 'missing') }), 'unreadable: the read says what is wrong');

  // The other data stages: on plain input, only normalise's statistics from the data are work.
  const stage = (type: string) => builtinStages.find((s) => s.type === type)!;
  const parse = (type: string, value: object) => {
    const parsed = stage(type).settings.safeParse(value);
    if (!parsed.success) throw new Error(`${type}: bad settings`);
    return parsed.data;
  };
  const ctx = stageContext('x');
  t.false(await stage('untar').worthCaching!(parse('untar', {}), ctx));
  t.false(await stage('decodeIdx').worthCaching!(parse('decodeIdx', {}), ctx));
  const normalise = stage('normalise');
  t.false(await normalise.worthCaching!(parse('normalise', {}), ctx));
  t.true(await normalise.worthCaching!(parse('normalise', { standardise: 'global' }), ctx));
  t.false(
    await normalise.worthCaching!(parse('normalise', { standardise: 'global', mean: 0.1, std: 0.3 }), ctx),
    'fixed mean and std: no pass over the data',
  );
});

test('files start ahead while one block’s worth of their first blocks fits', (t) => {
  const MiB = 1024 * 1024;
  // MNIST, smallest first: all three after the first.
  t.is(localReadAhead([10_008, 60_008, 7_840_016, 47_040_016], 64 * MiB), 3);
  // Six 30 MiB files: two at a time.
  t.is(localReadAhead(Array(6).fill(30 * MiB), 64 * MiB), 2);
  // Files larger than a block: one block of the next one.
  t.is(localReadAhead([100 * MiB, 100 * MiB, 100 * MiB], 64 * MiB), 1);
  t.is(localReadAhead([5], 64 * MiB), 0);
  // A directory of many small files: a few ahead, not all of them, and quickly.
  t.is(localReadAhead(Array(100_000).fill(4096), 64 * MiB), MOST_READ_AHEAD);
});

test('the embedded MNIST comes out byte for byte, smallest file first, in chunks of at most 1 MiB', async (t) => {
  const ctx = stageContext('fetch', { cacheDir: join(root, 'cache') });
  const items = await collect<Message>(
    fetchStage.create(fetchSettings.parse({ url: 'embedded:mnist' }), ctx)(emptyFlow),
  );
  const chunks = items.filter((m): m is FileChunk => m.kind === 'bytes');
  const files = [...new Set(chunks.map((c) => c.file))];
  t.deepEqual(files, [
    't10k-labels-idx1-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    'train-images-idx3-ubyte',
  ]);
  for (const file of files) {
    const own = chunks.filter((c) => c.file === file);
    t.true(own.at(-1)!.last && own.slice(0, -1).every((c) => !c.last), `${file}: one last chunk`);
    t.true(
      own.every((c) => c.bytes.byteLength <= 1024 * 1024),
      `${file}: chunks of at most 1 MiB`,
    );
    t.true(
      Buffer.concat(own.map((c) => c.bytes)).equals(readFileSync(join(MNIST_DIR, file))),
      `${file}: its bytes`,
    );
  }
});

test('a run walks a local directory once: its fingerprint, its worth and its read see the same files', async (t) => {
  const dir = join(root, 'listed-once');
  mkdirSync(dir);
  const subset = mnistSubset(300, 100);
  for (const [name, bytes] of Object.entries(subset)) writeFileSync(join(dir, name), bytes);
  const settings = fetchSettings.parse({ url: dir });
  const ctx = stageContext('fetch', { baseDir: root, cacheDir: join(root, 'listed-cache') });
  t.is(await fetchStage.fingerprint!(settings, ctx, { onlyIfKnown: true }), null);
  // A file that appears after the run has listed the directory is not this run's.
  writeFileSync(join(dir, 'late-images-idx3-ubyte.gz'), gzipSync(subset['t10k-images-idx3-ubyte']!));
  t.false(await fetchStage.worthCaching!(settings, ctx), 'the listing made for the fingerprint');
  const items = await collect<Message>(fetchStage.create(settings, ctx)(emptyFlow));
  const files = new Set(items.flatMap((m) => (m.kind === 'bytes' ? [m.file] : [])));
  t.deepEqual([...files].sort(), Object.keys(subset).sort(), 'the read takes the same files');
  // A new run lists afresh.
  const next = stageContext('fetch', { baseDir: root, cacheDir: join(root, 'listed-cache') });
  t.true(await fetchStage.worthCaching!(settings, next));
});

test('a block is read whole; a file that grew is read on; one that got shorter fails naming it', async (t) => {
  const path = join(root, 'blocks.bin');
  const bytes = Buffer.alloc(3 * 1000 + 17);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
  writeFileSync(path, bytes);
  const read = (onBlock?: (b: Uint8Array) => void) =>
    collect(fromFileBlocks(path, { blockBytes: 1000, chunkBytes: 300, onBlock }));
  const blocks: number[] = [];
  const chunks = await read((b) => blocks.push(b.byteLength));
  t.deepEqual(blocks, [1000, 1000, 1000, 17]);
  t.true(Buffer.concat(chunks).equals(bytes));

  // Appended after the size was taken (before the last block is asked for): read to the new end.
  const sink = subscribeManually(fromFileBlocks(path, { blockBytes: 1000, chunkBytes: 1000 }));
  sink.demand.request(1);
  await waitUntil(() => sink.items.length === 1);
  appendFileSync(path, Buffer.from([1, 2, 3]));
  sink.demand.request(100);
  await waitUntil(() => sink.completed || sink.error !== undefined);
  t.is(Buffer.concat(sink.items).byteLength, bytes.length + 3);

  // Cut short after its size was taken: the next block is not all there.
  writeFileSync(path, bytes);
  const shrinking = subscribeManually(fromFileBlocks(path, { blockBytes: 1000, chunkBytes: 1000 }));
  shrinking.demand.request(1);
  await waitUntil(() => shrinking.items.length === 1);
  truncateSync(path, 1500);
  shrinking.demand.request(100);
  await waitUntil(() => shrinking.completed || shrinking.error !== undefined);
  t.true(shrinking.error instanceof RxtrainError);
  t.regex((shrinking.error as Error).message, /blocks\.bin: the file got shorter while it was read/);
});

async function waitUntil(done: () => boolean): Promise<void> {
  // Polls on state, not time: the bound (~30 s) only turns a hang into a failure on a loaded machine.
  for (let i = 0; i < 15_000 && !done(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!done()) throw new Error('timed out');
}
