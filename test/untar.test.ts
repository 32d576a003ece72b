/** The untar stage on hostile and broken input: unsafe entries, limits, truncation, stalls. */
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { Observable } from 'rxjs';
import { type Flow, fromArray } from '../src/flow/index.js';
import type { FileChunk, Message } from '../src/pipeline/messages.js';
import { unsafeEntry, untarSettings, untarStage } from '../src/stages/untar.js';
import { ArchiveError } from '../src/util/errors.js';
import { collect, makeTar, notebookArchive, subscribeManually } from './helpers/index.js';
import { waitFor } from './helpers/resume.js';
import { fileChunks, stageContext } from './helpers/stageContext.js';

function untar(input: Flow<Message>, settings: Record<string, unknown> = {}) {
  const ctx = stageContext('untar');
  return { flow: untarStage.create(untarSettings.parse(settings), ctx)(input), ctx };
}

/** Each file's bytes, joined, by name. */
function files(messages: readonly Message[]): Map<string, Buffer> {
  const out = new Map<string, Buffer[]>();
  for (const m of messages) {
    if (m.kind !== 'bytes') continue;
    out.set(m.file, [...(out.get(m.file) ?? []), Buffer.from(m.bytes)]);
  }
  return new Map([...out].map(([k, v]) => [k, Buffer.concat(v)]));
}

test('unsafe entries are recognised', (t) => {
  t.regex(unsafeEntry({ name: '../../evil', type: 'file' })!, /climbs out/);
  t.regex(unsafeEntry({ name: 'a/../../evil', type: 'file' })!, /climbs out/);
  t.regex(unsafeEntry({ name: '/etc/evil', type: 'file' })!, /absolute/);
  t.regex(unsafeEntry({ name: 'C:\\evil', type: 'file' })!, /absolute/);
  t.regex(
    unsafeEntry({ name: 'raw/link', type: 'symlink', linkname: '/etc/passwd' })!,
    /symbolic link \(to \/etc\/passwd\)/,
  );
  t.regex(unsafeEntry({ name: 'raw/hard', type: 'link', linkname: 'raw/a' })!, /hard link/);
  t.is(unsafeEntry({ name: 'MNIST/raw/a..b', type: 'file' }), undefined);
  t.is(unsafeEntry({ name: 'MNIST/raw/train-images-idx3-ubyte', type: 'file' }), undefined);
});

test('.., absolute, symlink and hardlink entries are skipped with a warning, even when included', async (t) => {
  const archive = await makeTar([
    { name: 'raw/a', data: 'good a' },
    { name: '../../evil', data: 'evil' },
    { name: '/tmp/rxtrain-abs-evil', data: 'evil' },
    { name: 'raw/b', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'raw/c', type: 'link', linkname: 'raw/a' },
    { name: 'raw/b', data: 'good b' },
  ]);
  const { flow, ctx } = untar(fromArray<Message>(fileChunks('x.tar.gz', archive)), { include: ['**'] });
  const out = files(await collect(flow));
  t.deepEqual([...out.keys()].sort(), ['raw/a', 'raw/b']);
  t.is(out.get('raw/b')!.toString(), 'good b', 'the symlink of the same name was not followed');
  const warnings = ctx.emitted.filter((e) => e.type === 'warning' && e.code === 'W_TAR_UNSAFE');
  t.is(warnings.length, 4);
  t.regex(
    (warnings[0] as { message: string }).message,
    /^src\/x.tar.gz: skipping entry \.\.\/\.\.\/evil: a path that climbs out/,
  );
});

test('a truncated .tar.gz fails naming the archive and the entry being read', async (t) => {
  const archive = await notebookArchive();
  const cut = archive.subarray(0, Math.floor(archive.length * 0.6));
  const error = await t.throwsAsync(
    collect(untar(fromArray<Message>(fileChunks('MNIST.tar.gz', cut))).flow),
    {
      instanceOf: ArchiveError,
    },
  );
  t.is(error?.code, 'E_GZIP');
  t.is(error?.archive, 'src/MNIST.tar.gz');
  t.regex(error?.entry ?? '', /^MNIST\/raw\//);
  t.regex(error?.message ?? '', /^src\/MNIST.tar.gz: entry MNIST\/raw\/\S+: gzip: unexpected end of file$/);
});

test('a truncated plain tar fails naming the archive and the entry', async (t) => {
  const tar = await makeTar(
    [
      { name: 'raw/a', data: 'x'.repeat(5000) },
      { name: 'raw/b', data: 'y'.repeat(5000) },
    ],
    {
      gzip: false,
    },
  );
  const error = await t.throwsAsync(
    collect(untar(fromArray<Message>(fileChunks('x.tar', tar.subarray(0, 7000), 1000))).flow),
    { instanceOf: ArchiveError },
  );
  t.is(error?.code, 'E_TAR');
  t.is(error?.entry, 'raw/b');
  t.regex(error?.message ?? '', /^src\/x.tar: entry raw\/b: archive is truncated/);
});

test('more entries than maxEntries: E_TAR_LIMIT', async (t) => {
  const archive = await makeTar(Array.from({ length: 5 }, (_, i) => ({ name: `e${i}`, data: 'x' })));
  const error = await t.throwsAsync(
    collect(untar(fromArray<Message>(fileChunks('x.tar.gz', archive)), { maxEntries: 3 }).flow),
    { instanceOf: ArchiveError },
  );
  t.is(error?.code, 'E_TAR_LIMIT');
  t.regex(error?.message ?? '', /more than 3 entries \(untar.maxEntries\)/);
});

/** A gzip stream of `n` MiB of zeros, built from one compressed MiB repeated as gzip members. */
function zerosGzip(mib: number): Buffer {
  const member = gzipSync(Buffer.alloc(1 << 20), { level: 9 });
  return Buffer.concat(Array.from({ length: mib }, () => member));
}

test('a .gz entry inside a tar that expands too far: E_TAR_LIMIT on the ratio, naming the entry', async (t) => {
  const archive = await makeTar([{ name: 'MNIST/raw/train-images-idx3-ubyte.gz', data: zerosGzip(64) }], {
    gzip: false,
  });
  const error = await t.throwsAsync(collect(untar(fromArray<Message>(fileChunks('x.tar', archive))).flow), {
    instanceOf: ArchiveError,
  });
  t.is(error?.code, 'E_TAR_LIMIT');
  t.is(error?.entry, 'MNIST/raw/train-images-idx3-ubyte.gz');
  t.regex(error?.message ?? '', /expanded to \d+ \(over 200:1, untar.maxRatio\); a decompression bomb/);
});

test('maxBytes caps the total output of decompression', async (t) => {
  const error = await t.throwsAsync(
    collect(untar(fromArray<Message>(fileChunks('zeros.gz', zerosGzip(8))), { maxBytes: 4 << 20 }).flow),
    { instanceOf: ArchiveError },
  );
  t.is(error?.code, 'E_TAR_LIMIT');
  t.regex(error?.message ?? '', /^src\/zeros.gz: decompresses to more than 4194304 bytes \(untar.maxBytes\)/);
  // Within the limits, the same data passes.
  const out = files(await collect(untar(fromArray<Message>(fileChunks('zeros.gz', zerosGzip(8)))).flow));
  t.is(out.get('zeros')!.length, 8 << 20);
});

/** The first `n` chunks of a file, then silence: a stream that is stuck, not ended. */
function stuckAfter(chunks: FileChunk[], n: number): Flow<Message> {
  return (requests) =>
    new Observable<Message>((subscriber) => {
      let sent = 0;
      const sub = requests.subscribe((k) => {
        for (let i = 0; i < k && sent < n; i++) subscriber.next(chunks[sent++]!);
      });
      return () => sub.unsubscribe();
    });
}

test.serial(
  'a stream that stops mid-archive becomes E_STALL naming archive and entry, not a hang',
  async (t) => {
    const archive = await notebookArchive();
    const started = performance.now();
    const error = await t.throwsAsync(
      collect(untar(stuckAfter(fileChunks('MNIST.tar.gz', archive), 20), { stallTimeoutMs: 300 }).flow),
      { instanceOf: ArchiveError },
    );
    t.is(error?.code, 'E_STALL');
    t.regex(
      error?.message ?? '',
      /^src\/MNIST.tar.gz: entry MNIST\/raw\/\S+: no progress for 300 ms \(untar.stallTimeoutMs\)/,
    );
    t.true(performance.now() - started < 3000);
  },
);

test.serial('a slow consumer is not a stall', async (t) => {
  const archive = await makeTar([{ name: 'raw/a', data: Buffer.alloc(300_000, 7) }]);
  const run = subscribeManually(
    untar(fromArray<Message>(fileChunks('x.tar.gz', archive, 4096)), { stallTimeoutMs: 200 }).flow,
  );
  run.demand.request(1);
  // The first item (however slow the machine), then a hold four times the stall timeout: the
  // watchdog must take the consumer's pause for what it is.
  await waitFor('the first item', () => run.items.length >= 1 || run.error !== undefined);
  await new Promise((resolve) => setTimeout(resolve, 800));
  t.is(run.items.length, 1, 'holding one item for the consumer');
  t.is(run.error, undefined);
  run.demand.request(1_000_000);
  await waitFor('the end', () => run.completed || run.error !== undefined);
  t.is(run.error, undefined);
  t.true(run.completed);
  t.is(files(run.items).get('raw/a')!.length, 300_000);
});
