/**
 * Hostile archives through the real CLI: escaping entries write nothing anywhere, and a 1 GiB
 * gzip bomb fails fast with bounded memory (peak RSS from /usr/bin/time -v when it exists).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import test from 'ava';
import { parseEvents } from '../src/pipeline/events.js';
import { FaultServer, serve } from './helpers/faultServer.js';
import { BIN, makeTar, mnistSubset, notebookArchive, runCli } from './helpers/index.js';
import { assertCache, localReference, QUICK, remoteRunArgs, scratchDir } from './helpers/remoteRun.js';

/** Every file below `dir`, relative to it. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  walk(dir);
  return out.sort();
}

test('an archive with ../../evil, an absolute path, a symlink and a hardlink writes nothing outside the cache', async (t) => {
  const sandbox = scratchDir(t, 'rxtrain-hostile-');
  const cwd = join(sandbox, 'work', 'here');
  mkdirSync(cwd, { recursive: true });
  const f = mnistSubset();
  const archive = await makeTar([
    { name: '../../evil', data: 'escaped' },
    { name: join(sandbox, 'abs-evil'), data: 'absolute' },
    // A link named like the labels file, ahead of the real one: it must not be followed.
    { name: 'MNIST/raw/train-labels-idx1-ubyte', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'MNIST/raw/t10k-labels-idx1-ubyte', type: 'link', linkname: '../../evil' },
    { name: 'MNIST/raw/train-labels-idx1-ubyte', data: f['train-labels-idx1-ubyte'] },
    { name: 'MNIST/raw/t10k-labels-idx1-ubyte', data: f['t10k-labels-idx1-ubyte'] },
    { name: 'MNIST/raw/t10k-images-idx3-ubyte.gz', data: gzipSync(f['t10k-images-idx3-ubyte']!) },
    { name: 'MNIST/raw/train-images-idx3-ubyte', data: f['train-images-idx3-ubyte'] },
  ]);
  // The same files in a benign archive train to these weights.
  const reference = await localReference(await notebookArchive(f));
  const server = await FaultServer.start({ '/MNIST.tar.gz': [serve(archive)] });
  try {
    const cache = join(sandbox, 'cache');
    const runDir = join(sandbox, 'run');
    const sets = [...QUICK, `fetch.url=${server.url('/MNIST.tar.gz')}`, 'untar.include=["**"]'];
    const result = await runCli(remoteRunArgs(runDir, cache, sets), { cwd });
    t.is(result.code, 0, result.stderr);
    t.is(JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')).weightsSha256, reference);
    const files = tree(sandbox);
    t.false(existsSync(join(sandbox, 'evil')));
    t.false(existsSync(join(sandbox, 'abs-evil')));
    t.deepEqual(
      files.filter((p) => !p.startsWith('run/')),
      tree(cache).map((p) => `cache/${p}`),
      `only the cache and the run directory: ${files.join(', ')}`,
    );
    assertCache(t, cache, archive);
    const unsafe = parseEvents(readFileSync(join(runDir, 'events.ndjson'), 'utf8')).filter(
      (e) => e.type === 'warning' && e.code === 'W_TAR_UNSAFE',
    );
    t.is(unsafe.length, 4, JSON.stringify(unsafe));
  } finally {
    await server.close();
  }
});

/** Run the CLI under /usr/bin/time -v when it exists; peak RSS in kB from its report. */
function runTimed(
  args: string[],
): Promise<{ code: number | null; lines: string[]; maxRssKb?: number; wallMs: number }> {
  const timed = existsSync('/usr/bin/time');
  const command = timed ? '/usr/bin/time' : process.execPath;
  const argv = timed ? ['-v', process.execPath, BIN, ...args] : [BIN, ...args];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      // time -v reports the command's status in its text and exits with it.
      const status = /Exit status: (\d+)/.exec(stderr);
      resolve({
        code: status ? Number(status[1]) : code,
        lines: stderr.split('\n').filter((l) => l.startsWith('rxtrain')),
        maxRssKb: rss ? Number(rss[1]) : undefined,
        wallMs: performance.now() - started,
      });
    });
  });
}

test('a gzip of 1 GiB of zeros fails at the limit with a clear message and bounded memory', async (t) => {
  const sandbox = scratchDir(t, 'rxtrain-bomb-');
  const bombPath = join(sandbox, 'MNIST.tar.gz');
  // One gzip member of 1 GiB of zeros, compressed as hard as zlib can (about 1 MB).
  const zeros = Buffer.alloc(1 << 20);
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < 1024; i++) yield zeros;
      })(),
    ),
    createGzip({ level: 9 }),
    createWriteStream(bombPath),
  );
  const bomb = readFileSync(bombPath);
  const server = await FaultServer.start({ '/MNIST.tar.gz': [serve(bomb)] });
  try {
    const cache = join(sandbox, 'cache');
    const sets = [...QUICK, `fetch.url=${server.url('/MNIST.tar.gz')}`];
    const run = await runTimed(remoteRunArgs(join(sandbox, 'run'), cache, sets));
    t.is(run.code, 1);
    t.is(run.lines.length, 1, run.lines.join('\n'));
    t.regex(
      run.lines[0]!,
      /^rxtrain: E_TAR_LIMIT: http:\S+\/MNIST.tar.gz: \d+ compressed bytes expanded to \d+ \(over 200:1, untar.maxRatio\); a decompression bomb, or raise the limit$/,
    );
    // How long it took is logged, not asserted: a loaded machine stretches it (benchmarks time it).
    if (run.maxRssKb === undefined) t.log('/usr/bin/time not found: peak RSS not measured');
    else {
      t.log(
        `1 GiB gzip bomb: failed in ${Math.round(run.wallMs)} ms, peak RSS ${Math.round(run.maxRssKb / 1024)} MiB`,
      );
      t.true(run.maxRssKb < 300 * 1024, `peak RSS ${run.maxRssKb} kB`);
    }
    assertCache(t, cache, undefined);
  } finally {
    await server.close();
  }
});

test('the same bomb with the ratio limit off: maxBytes stops it, memory still bounded', async (t) => {
  // A tar.gz whose one entry claims 1 GiB of zeros: a header member, 1024 gzip members of one
  // MiB of zeros each (a valid multi-member gzip), no end blocks needed before the limit.
  const header = Buffer.alloc(512);
  header.write('MNIST/raw/zeros-ubyte', 0); // kept by untar, matched by no split
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${(2 ** 30).toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const member = gzipSync(Buffer.alloc(1 << 20), { level: 9 });
  const bomb = Buffer.concat([gzipSync(header), ...Array.from({ length: 1024 }, () => member)]);
  const sandbox = scratchDir(t, 'rxtrain-bomb-');
  const path = join(sandbox, 'MNIST.tar.gz');
  await pipeline(Readable.from([bomb]), createWriteStream(path));
  const run = await runTimed(
    remoteRunArgs(join(sandbox, 'run'), undefined, [
      ...QUICK,
      `fetch.url=${path}`,
      'untar.maxRatio=0',
      `untar.maxBytes=${256 * 2 ** 20}`,
    ]),
  );
  t.is(run.code, 1);
  t.regex(
    run.lines[0]!,
    /^rxtrain: E_TAR_LIMIT: \S+MNIST.tar.gz: entry MNIST\/raw\/zeros-ubyte: decompresses to more than 268435456 bytes \(untar.maxBytes\)/,
  );
  // How long it took is logged, not asserted: a loaded machine stretches it.
  if (run.maxRssKb !== undefined) {
    t.log(
      `tar.gz bomb, ratio limit off: failed in ${Math.round(run.wallMs)} ms, peak RSS ${Math.round(run.maxRssKb / 1024)} MiB`,
    );
    t.true(run.maxRssKb < 300 * 1024, `peak RSS ${run.maxRssKb} kB`);
  }
});
