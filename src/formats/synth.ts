/**
 * Synthetic image-classification data of any size, for scale tests and for anyone without MNIST:
 * IDX files with MNIST's names and layout (u8 images `[n, rows, cols]`, u8 labels `[n]`) — or
 * EMNIST's (`<prefix>-test-…`, images transposed), each file gzipped if asked — or CIFAR-10's
 * binary records (`data_batch_<k>.bin`, `test_batch.bin`), written as a directory or as a
 * `.tar`/`.tar.gz` archive, streamed to disk in bounded memory. The images and labels come from
 * synthGenerator.ts; this module names, orders and writes the files.
 */
import { once } from 'node:events';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { syncDirectory } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { checkSynthSpec, SynthGenerator, type SynthSpec } from './synthGenerator.js';

export { DEFAULT_SYNTH, type SynthSpec } from './synthGenerator.js';

/** One output file: its MNIST-style name, its size, and its bytes as a stream of chunks. */
export interface SynthFile {
  name: string;
  bytes: number;
  examples: number;
  chunks: () => AsyncGenerator<Uint8Array>;
}

/**
 * The files of a dataset, in the order a streaming reader wants them: the small test split first
 * (the evaluator holds it before training starts), and each split's labels before its images (the
 * decoder pairs images with labels as they arrive, holding nothing).
 */
export function synthFiles(spec: SynthSpec): SynthFile[] {
  checkSynthSpec(spec);
  const generator = new SynthGenerator(spec);
  if (spec.layout === 'cifar') return cifarFiles(spec, generator);
  const files: SynthFile[] = [];
  const imageBytes = spec.rows * spec.cols;
  const gz = spec.gzip ? '.gz' : '';
  for (const [split, mnistName] of [
    ['test', 't10k'],
    ['train', 'train'],
  ] as const) {
    const stream = generator.split(split);
    if (stream.count === 0) continue;
    const prefix = spec.prefix ? `${spec.prefix}-${split}` : mnistName;
    files.push({
      name: `${prefix}-labels-idx1-ubyte${gz}`,
      bytes: 8 + stream.count,
      examples: stream.count,
      chunks: () => stream.labelsFile(),
    });
    files.push({
      name: `${prefix}-images-idx3-ubyte${gz}`,
      bytes: 16 + stream.count * imageBytes,
      examples: stream.count,
      chunks: () => stream.imagesFile(),
    });
  }
  return files;
}

/**
 * CIFAR-10's binary version: `data_batch_1.bin` … with `perFile` training records each (the last
 * may hold fewer), `test_batch.bin`, and `batches.meta.txt` naming the classes, one per line.
 */
function cifarFiles(spec: SynthSpec, generator: SynthGenerator): SynthFile[] {
  const recordBytes = 1 + spec.channels * spec.rows * spec.cols;
  const files: SynthFile[] = [];
  const train = generator.split('train');
  for (let part = 0; part * spec.perFile < spec.train; part++) {
    const n = Math.min(spec.perFile, spec.train - part * spec.perFile);
    files.push({
      name: `data_batch_${part + 1}.bin`,
      bytes: n * recordBytes,
      examples: n,
      chunks: () => train.recordsFile(part, n),
    });
  }
  if (spec.test > 0) {
    const test = generator.split('test');
    files.push({
      name: 'test_batch.bin',
      bytes: spec.test * recordBytes,
      examples: spec.test,
      chunks: () => test.recordsFile(0, spec.test),
    });
  }
  const meta = new TextEncoder().encode(
    `${Array.from({ length: spec.classes }, (_, c) => `class${c}`).join('\n')}\n\n`,
  );
  files.push({
    name: 'batches.meta.txt',
    bytes: meta.byteLength,
    examples: 0,
    chunks: async function* () {
      yield meta;
    },
  });
  return files;
}

export type SynthFormat = 'dir' | 'tar' | 'tar.gz';

/** The format an output path asks for: `.tar`, `.tar.gz`/`.tgz`, or otherwise a directory. */
export function formatOf(path: string): SynthFormat {
  if (/\.(tar\.gz|tgz)$/i.test(path)) return 'tar.gz';
  if (/\.tar$/i.test(path)) return 'tar';
  return 'dir';
}

export interface WriteProgress {
  file: string;
  written: number;
  total: number;
}

/**
 * Write a synthetic dataset to `out`: a directory of IDX files, or one archive. Nothing is
 * half-written: each file (or the archive) is written under a temporary name and renamed when
 * complete; on failure the temporary file is removed. Returns the bytes written.
 */
export async function writeSynthDataset(
  out: string,
  spec: SynthSpec,
  onProgress?: (p: WriteProgress) => void,
): Promise<{ files: SynthFile[]; bytes: number; format: SynthFormat }> {
  const files = synthFiles(spec);
  const format = formatOf(out);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  let written = 0;
  const progress = (file: string, n: number) => {
    written += n;
    onProgress?.({ file, written, total });
  };
  if (format === 'dir') {
    mkdirOrFail(out);
    for (const file of files) {
      await writeAtomically(join(out, file.name), async (sink) => {
        const gzip = spec.gzip ? createGzip({ level: 6 }) : undefined;
        const piped = gzip ? pipeGzip(gzip, sink) : undefined;
        for await (const chunk of file.chunks()) {
          await write(gzip ?? sink, chunk);
          progress(file.name, chunk.byteLength);
        }
        if (gzip) {
          gzip.end();
          await piped;
        }
      });
    }
    syncDirectory(out);
  } else {
    if (spec.gzip)
      throw new RxtrainError('E_USAGE', 'synth: --gzip writes a directory of .gz files, not an archive');
    mkdirOrFail(dirname(out));
    // CIFAR-10's archive holds its files under cifar-10-batches-bin/.
    const top =
      spec.layout === 'cifar'
        ? 'cifar-10-batches-bin'
        : basename(out).replace(/\.(tar\.gz|tgz|tar)$/i, '') || 'synth';
    await writeAtomically(out, async (sink) => {
      const tar = tarPack();
      const gzip = format === 'tar.gz' ? createGzip({ level: 6 }) : undefined;
      const piped = pipeTo(tar, gzip, sink);
      for (const file of files) {
        // A fixed mtime: the same seed gives the same archive, byte for byte.
        let settle!: (error?: Error | null) => void;
        const entryDone = new Promise<void>((resolve, reject) => {
          settle = (error) => (error ? reject(error) : resolve());
        });
        const entry = tar.entry(
          { name: `${top}/${file.name}`, size: file.bytes, mtime: new Date(0) },
          (error) => settle(error),
        );
        for await (const chunk of file.chunks()) {
          if (!entry.write(chunk)) await once(entry, 'drain');
          progress(file.name, chunk.byteLength);
        }
        (entry as unknown as { end(): void }).end();
        await entryDone;
      }
      tar.finalize();
      await piped;
    });
  }
  return { files, bytes: written, format };
}

function mkdirOrFail(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new RxtrainError(
      'E_IO',
      `${dir}: cannot create directory (${(error as NodeJS.ErrnoException).code})`,
    );
  }
}

/** Write `path` through a temporary file beside it; rename when `fill` succeeds, remove if not. */
async function writeAtomically(path: string, fill: (sink: Writable) => Promise<void>): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const sink = createWriteStream(tmp);
  const closed = once(sink, 'close');
  try {
    await fill(sink);
    sink.end();
    await once(sink, 'finish');
    await closed;
    renameSync(tmp, path);
  } catch (error) {
    sink.destroy();
    rmSync(tmp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof RxtrainError || !code) throw error;
    throw new RxtrainError(
      'E_IO',
      `${path}: cannot write (${code}${code === 'ENOSPC' ? ': no space left on device' : ''})`,
      { cause: error },
    );
  }
}

/** Write a chunk, waiting for the stream to drain when its buffer is full. */
async function write(sink: Writable, chunk: Uint8Array): Promise<void> {
  if (!sink.write(chunk)) await once(sink, 'drain');
}

/** Pipe a gzip stream into `sink` without ending it; resolves when all it produced is written. */
function pipeGzip(gzip: ReturnType<typeof createGzip>, sink: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    gzip.on('error', reject);
    gzip.on('data', (chunk: Uint8Array) => {
      if (!sink.write(chunk)) {
        gzip.pause();
        sink.once('drain', () => gzip.resume());
      }
    });
    gzip.on('end', () => resolve());
  });
}

/** Pipe the tar stream (through gzip) into `sink` without ending it; resolves when all is written. */
function pipeTo(
  tar: ReturnType<typeof tarPack>,
  gzip: ReturnType<typeof createGzip> | undefined,
  sink: Writable,
) {
  return new Promise<void>((resolve, reject) => {
    const target = gzip ?? sink;
    tar.on('error', reject);
    gzip?.on('error', reject);
    sink.on('error', reject);
    tar.on('data', (chunk: unknown) => {
      if (!target.write(chunk as Uint8Array)) {
        tar.pause();
        target.once('drain', () => tar.resume());
      }
    });
    tar.on('end', () => {
      if (!gzip) return resolve();
      gzip.end();
    });
    if (gzip) {
      gzip.on('data', (chunk: Uint8Array) => {
        if (!sink.write(chunk)) {
          gzip.pause();
          sink.once('drain', () => gzip.resume());
        }
      });
      gzip.on('end', () => resolve());
    }
  });
}
