/**
 * bench:stream — one epoch over a training set larger than memory should need, in bounded memory.
 *
 * Generates ≥ 4 GB of 28×28 IDX images with `rxtrain synth` (a .tar in a temporary directory),
 * then trains one epoch of fetch → untar → decodeIdx → normalise → shuffle (buffer, 10,000) → sgd
 * (→ evaluate at the end) on it, each run under `/usr/bin/time -v` for its peak RSS:
 *
 *   disk            the archive read from disk, default edge capacities
 *   http            the archive fetched from a local HTTP server, default capacities
 *   http-unbounded  the same with capacity limits switched off (capacity.items = 10⁹)
 *   disk-unbounded  from disk with capacity limits switched off
 *
 * An unbounded run is stopped when its RSS passes --rss-cap-mb (it would otherwise take the
 * machine's memory); the table then says how far it got. Usage:
 *
 *   npm run bench:stream -- [--images 5200000] [--only disk,http,http-unbounded] [--dir DIR]
 *                           [--rss-cap-mb 3000] [--keep]
 *
 * Timing figures depend on the machine; compare the variants with each other.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseEvents } from '../src/pipeline/events.js';
import { serveBody } from './stream-server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/rxtrain.js');
const TEST_IMAGES = 10_000;
const IMAGE_BYTES = 28 * 28;

const VARIANTS = {
  disk: { source: 'disk', bounded: true },
  http: { source: 'http', bounded: true },
  'http-unbounded': { source: 'http', bounded: false },
  'disk-unbounded': { source: 'disk', bounded: false },
} as const;
type Variant = keyof typeof VARIANTS;

interface Result {
  variant: Variant;
  status: string;
  images: number;
  wallSeconds: number;
  imagesPerSecond: number;
  peakRssMb: number;
  testAccuracy?: number;
  note: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '5200000' },
      only: { type: 'string', default: 'disk,http,http-unbounded,disk-unbounded' },
      dir: { type: 'string' },
      'rss-cap-mb': { type: 'string', default: '3000' },
      keep: { type: 'boolean', default: false },
    },
  });
  const images = Number(values.images);
  const variants = values.only.split(',').map((v) => v.trim()) as Variant[];
  for (const v of variants)
    if (!(v in VARIANTS)) fail(`unknown variant ${v} (${Object.keys(VARIANTS).join(', ')})`);
  const rssCapMb = Number(values['rss-cap-mb']);
  if (!existsSync('/usr/bin/time')) fail('/usr/bin/time is needed for peak RSS (apt-get install time)');

  const base = values.dir ? resolve(values.dir) : tmpdir();
  mkdirSync(base, { recursive: true });
  const needed = images * (IMAGE_BYTES + 1) + TEST_IMAGES * (IMAGE_BYTES + 1) + 1024 * 1024 * 1024;
  const fs = statfsSync(base);
  const free = fs.bavail * fs.bsize;
  console.log(`free space in ${base}: ${gb(free)} GB; this bench needs ${gb(needed)} GB`);
  if (free < needed)
    fail(`not enough space in ${base}; pass --dir on a larger file system or fewer --images`);

  const work = mkdtempSync(join(base, 'rxtrain-bench-stream-'));
  const archive = join(work, 'synth.tar');
  try {
    console.log(
      `generating ${images.toLocaleString('en-US')} training images (${gb(images * IMAGE_BYTES)} GB) …`,
    );
    const generated = spawnSync(
      process.execPath,
      [BIN, 'synth', archive, '--train', String(images), '--test', String(TEST_IMAGES), '--quiet'],
      { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' },
    );
    if (generated.status !== 0) fail('rxtrain synth failed');
    console.log(generated.stdout.trim());

    const config = join(work, 'bench.yaml');
    writeFileSync(config, benchConfig(archive));
    const server = await serveBody(archive);
    const results: Result[] = [];
    try {
      for (const variant of variants) {
        console.log(`\n== ${variant}`);
        const result = await runVariant(variant, config, server.url, { work, rssCapMb });
        console.log(describe(result));
        results.push(result);
      }
    } finally {
      server.close();
    }
    console.log(
      `\none epoch over ${images.toLocaleString('en-US')} 28×28 images (${gb(images * IMAGE_BYTES)} GB of IDX), ${TEST_IMAGES} test images`,
    );
    console.log(table(results));
  } finally {
    if (values.keep) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

class BenchError extends Error {}

main().catch((error) => {
  console.error(`bench:stream: ${error instanceof BenchError ? error.message : error}`);
  process.exitCode = 1;
});

function benchConfig(path: string): string {
  return `# written by bench/stream.ts
name: bench-stream
seed: 0
progressIntervalMs: 1000
checkpoint: { atEnd: false, onSignal: false }
stages:
  - type: fetch
    url: ${path}
  - type: untar
  - type: decodeIdx
  - type: normalise # x/255 and a bias input: fixed, so the buffer sampler can start at once
  - type: shuffle
    mode: buffer
    bufferSize: 10000
  - type: sgd
    batchSize: 64
    lr: 0.1
    epochs: 1
    logEvery: 5000
  - type: evaluate
    atStart: false
    every: 0
`;
}

async function runVariant(
  variant: Variant,
  config: string,
  url: string,
  { work, rssCapMb }: { work: string; rssCapMb: number },
): Promise<Result> {
  const { source, bounded } = VARIANTS[variant];
  const runDir = join(work, `run-${variant}`);
  const args = ['-v', process.execPath, BIN, 'run', config, '--run-dir', runDir, '--quiet'];
  if (source === 'http') args.push('--set', `fetch.url=${url}/synth.tar`);
  if (!bounded) args.push('--set', 'capacity={items: 1000000000}');
  const started = performance.now();
  const child = spawn('/usr/bin/time', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.on('data', (d) => process.stdout.write(d));
  // Guard: stop a run whose memory runs away (the unbounded variants).
  let capped = false;
  let lastRssMb = Number.NaN;
  const guard = setInterval(() => {
    const pid = childPid(child.pid);
    if (!pid) return;
    lastRssMb = rssMb(pid);
    if (lastRssMb > rssCapMb) {
      capped = true;
      process.kill(pid, 'SIGKILL');
    }
  }, 200);
  const code = await new Promise<number | null>((resolveExit) => child.on('close', resolveExit));
  clearInterval(guard);
  const wallSeconds = (performance.now() - started) / 1000;
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
  const summaryFile = join(runDir, 'summary.json');
  if (!capped && code === 0 && existsSync(summaryFile)) {
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
    return {
      variant,
      status: summary.status,
      images: summary.samples,
      wallSeconds,
      imagesPerSecond: summary.samples / (summary.durationMs / 1000),
      peakRssMb: peakKb / 1024,
      testAccuracy: summary.test?.accuracy,
      note: '',
    };
  }
  // Stopped or failed: how far did it get?
  const events = existsSync(join(runDir, 'events.ndjson'))
    ? parseEvents(readFileSync(join(runDir, 'events.ndjson'), 'utf8'))
    : [];
  const trained = events.filter((e) => e.type === 'train').at(-1);
  const fetched = events.filter((e) => e.type === 'stage-progress' && e.stage === 'fetch').at(-1) as
    | { bytes?: number; total?: number }
    | undefined;
  const samples = trained && trained.type === 'train' ? trained.samples : 0;
  const read =
    fetched?.bytes && fetched.total
      ? `${((100 * fetched.bytes) / fetched.total).toFixed(0)}% of the archive read, `
      : '';
  const note = capped
    ? `stopped: RSS passed ${rssCapMb} MB after ${wallSeconds.toFixed(0)} s (${read}~${samples.toLocaleString('en-US')} images trained)`
    : `failed (exit ${code}): ${stderr.split('\n').find((l) => l.startsWith('rxtrain:')) ?? 'see above'}`;
  return {
    variant,
    status: capped ? 'stopped' : 'failed',
    images: samples,
    wallSeconds,
    imagesPerSecond: samples / wallSeconds,
    // Killed by the guard, /usr/bin/time reports no peak: the guard's last reading is a lower bound.
    peakRssMb: Number.isFinite(peakKb) ? peakKb / 1024 : lastRssMb,
    note,
  };
}

/** The node process /usr/bin/time started. */
function childPid(timePid: number | undefined): number | undefined {
  if (!timePid) return undefined;
  try {
    const children = readFileSync(`/proc/${timePid}/task/${timePid}/children`, 'utf8').trim();
    return children ? Number(children.split(/\s+/)[0]) : undefined;
  } catch {
    return undefined;
  }
}

function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

function describe(r: Result): string {
  return `${r.variant}: ${r.status}, ${r.images.toLocaleString('en-US')} images in ${r.wallSeconds.toFixed(1)} s, ${Math.round(r.imagesPerSecond).toLocaleString('en-US')} images/s, peak RSS ${r.peakRssMb.toFixed(0)} MB${r.note ? ` — ${r.note}` : ''}`;
}

function table(results: Result[]): string {
  const rows = [
    ['variant', 'status', 'images', 'wall s', 'images/s', 'peak RSS MB', 'test acc'],
    ...results.map((r) => [
      r.variant,
      r.status,
      r.images.toLocaleString('en-US'),
      r.wallSeconds.toFixed(1),
      Math.round(r.imagesPerSecond).toLocaleString('en-US'),
      r.peakRssMb.toFixed(0),
      r.testAccuracy === undefined ? '-' : r.testAccuracy.toFixed(4),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
  const notes = results.filter((r) => r.note).map((r) => `${r.variant}: ${r.note}`);
  return [...lines, ...notes].join('\n');
}

function gb(bytes: number): string {
  return (bytes / 1e9).toFixed(2);
}

function fail(message: string): never {
  throw new BenchError(message);
}
