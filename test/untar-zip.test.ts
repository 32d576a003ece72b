/**
 * untar on zip archives (EMNIST ships as gzip.zip): stored, deflated and data-descriptor entries
 * in any chunking, a .gz entry gunzipped, unsafe names skipped; a truncated zip, an unknown method
 * and an inflating bomb each fail naming the archive and the entry.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { fromArray } from '../src/flow/index.js';
import { encodeZip, type ZipEntryInput } from '../src/formats/zip.js';
import type { Message } from '../src/pipeline/messages.js';
import { untarSettings, untarStage } from '../src/stages/untar.js';
import { ArchiveError } from '../src/util/errors.js';
import { Prng } from '../src/util/random.js';
import { collect, tempDir } from './helpers/index.js';
import { fileChunks, stageContext } from './helpers/stageContext.js';

function untar(zip: Uint8Array, settings: Record<string, unknown> = {}, chunk = 64 * 1024) {
  const ctx = stageContext('untar');
  const input = fromArray<Message>(fileChunks('gzip.zip', zip, chunk));
  return { run: collect<Message>(untarStage.create(untarSettings.parse(settings), ctx)(input)), ctx };
}

function files(messages: readonly Message[]): Map<string, Buffer> {
  const out = new Map<string, Buffer[]>();
  for (const m of messages)
    if (m.kind === 'bytes') out.set(m.file, [...(out.get(m.file) ?? []), Buffer.from(m.bytes)]);
  return new Map([...out].map(([k, v]) => [k, Buffer.concat(v)]));
}

/** Bytes that do not compress: a deflated entry is about as long as its data. */
const pseudoRandom = (n: number, seed: number) => {
  const rng = new Prng(seed);
  return Uint8Array.from({ length: n }, () => rng.nextUint32() & 0xff);
};

const entries: ZipEntryInput[] = [
  { name: 'gzip/', data: new Uint8Array(0), deflate: false },
  { name: 'gzip/stored.bin', data: pseudoRandom(70_000, 1), deflate: false },
  { name: 'gzip/deflated.bin', data: pseudoRandom(90_000, 2) },
  { name: 'gzip/streamed.bin', data: pseudoRandom(50_000, 3), descriptor: true },
  { name: 'gzip/images-idx3-ubyte.gz', data: gzipSync(pseudoRandom(30_000, 4)) },
  { name: '../escape', data: new Uint8Array([1]) },
  { name: 'gzip/skipped.txt', data: new TextEncoder().encode('mapping') },
];

test('zip entries come out whole in any chunking: stored, deflated, with a data descriptor, gunzipped', async (t) => {
  const zip = encodeZip(entries);
  // The format is the real one: Info-ZIP lists and checks it.
  const path = join(tempDir(), 'gzip.zip');
  writeFileSync(path, zip);
  try {
    t.regex(execFileSync('unzip', ['-tq', path]).toString(), /No errors detected/);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    t.log('unzip not installed: the archive is checked by this reader only');
  }
  for (const chunk of [1000, 4093, 65536]) {
    const { run, ctx } = untar(zip, { include: ['gzip/*.bin', 'gzip/*.gz', '**/escape'] }, chunk);
    const out = files(await run);
    t.deepEqual([...out.keys()].sort(), [
      'gzip/deflated.bin',
      'gzip/images-idx3-ubyte',
      'gzip/stored.bin',
      'gzip/streamed.bin',
    ]);
    t.deepEqual(out.get('gzip/stored.bin'), Buffer.from(pseudoRandom(70_000, 1)));
    t.deepEqual(out.get('gzip/deflated.bin'), Buffer.from(pseudoRandom(90_000, 2)));
    t.deepEqual(out.get('gzip/streamed.bin'), Buffer.from(pseudoRandom(50_000, 3)));
    t.deepEqual(out.get('gzip/images-idx3-ubyte'), Buffer.from(pseudoRandom(30_000, 4)));
    const unsafe = ctx.emitted.filter((e) => e.type === 'warning' && e.code === 'W_TAR_UNSAFE');
    t.is(unsafe.length, 1, 'the entry climbing out with .. is skipped');
  }
});

test('a truncated zip fails naming the archive, the entry and the byte', async (t) => {
  const zip = encodeZip(entries);
  const cut = zip.subarray(0, 120_000); // inside gzip/deflated.bin
  const error = await t.throwsAsync(untar(cut).run, { instanceOf: ArchiveError });
  t.is(error?.code, 'E_ZIP');
  t.regex(
    error?.message ?? '',
    /^src\/gzip\.zip: entry gzip\/deflated\.bin: zip: archive is truncated \(unexpected end of data at byte 120000\)$/,
  );
  // Whole entries but no central directory: truncated too.
  const noDirectory = encodeZip(entries.slice(0, 2));
  const end = 30 + 'gzip/'.length + 30 + 'gzip/stored.bin'.length + 70_000;
  const error2 = await t.throwsAsync(untar(noDirectory.subarray(0, end)).run, { instanceOf: ArchiveError });
  t.regex(error2?.message ?? '', /zip: archive is truncated \(it ends before its central directory\)/);
});

test('an unknown compression method and a zip bomb fail naming the entry', async (t) => {
  const zip = Buffer.from(encodeZip([{ name: 'a/odd.bin', data: new Uint8Array(10), deflate: false }]));
  zip.writeUInt16LE(12, 8); // bzip2
  const error = await t.throwsAsync(untar(zip).run, { instanceOf: ArchiveError });
  t.is(error?.code, 'E_ZIP');
  t.regex(
    error?.message ?? '',
    /entry a\/odd\.bin uses compression method 12 \(only stored and deflate are read\)/,
  );

  const bomb = encodeZip([{ name: 'zeros.bin', data: new Uint8Array(40 * 2 ** 20) }]);
  const limit = await t.throwsAsync(untar(bomb).run, { instanceOf: ArchiveError });
  t.is(limit?.code, 'E_TAR_LIMIT');
  t.regex(
    limit?.message ?? '',
    /^src\/gzip\.zip: entry zeros\.bin: \d+ compressed bytes expanded to \d+ \(over 200:1/,
  );
});
