/** Running the MNIST experiment against a local server, and looking at what the cache holds. */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ExecutionContext } from 'ava';
import { loadConfig } from '../../src/pipeline/config.js';
import type { RxtrainEvent } from '../../src/pipeline/events.js';
import { type RunSummary, runExperiment } from '../../src/pipeline/run.js';
import { builtinStages } from '../../src/stages/index.js';
import { ROOT, tempDir } from './index.js';

/** A temporary directory removed when the test ends (caches hold megabytes per run). */
export function scratchDir(t: ExecutionContext, prefix?: string): string {
  const dir = tempDir(prefix);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A short experiment: enough to compare weights bit for bit, quick enough for many runs. */
export const QUICK = ['sgd.steps=200', 'evaluate.every=0'];
/** Retry delays small enough for tests. */
export const FAST_RETRY = ['fetch.retryDelayMs=5', 'fetch.maxRetryDelayMs=50'];

export const REMOTE_CONFIG = join(ROOT, 'config/mnist-remote.yaml');

/** `rxtrain run` arguments for the remote config: quiet, the given run and cache dirs, a --set per override. */
export function remoteRunArgs(runDir: string, cache: string | undefined, sets: readonly string[]): string[] {
  return [
    'run',
    REMOTE_CONFIG,
    '--quiet',
    ...(cache ? ['--cache', cache] : []),
    '--run-dir',
    runDir,
    ...sets.flatMap((s) => ['--set', s]),
  ];
}

/** weightsSha256 of the quick experiment on the embedded MNIST copy. */
export async function embeddedReference(): Promise<string> {
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
    stages: builtinStages,
    overrides: QUICK,
  });
  const scratch = tempDir();
  try {
    const summary = await runExperiment({
      config,
      runDir: join(scratch, 'run'),
      cacheDir: join(scratch, 'cache'),
    });
    return summary.weightsSha256!;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * weightsSha256 of the quick experiment on `archive` read from a local file: what a download of
 * the same archive must train to, however many faults it met on the way.
 */
export async function localReference(archive: Uint8Array): Promise<string> {
  const scratch = tempDir();
  try {
    const file = join(scratch, 'MNIST.tar.gz');
    writeFileSync(file, archive);
    const { summary } = await runRemote([`fetch.url=${file}`], join(scratch, 'cache'));
    return summary.weightsSha256!;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The quick experiment with config/mnist-remote.yaml and extra overrides, in this process. */
export async function runRemote(
  overrides: string[],
  cacheDir: string,
): Promise<{ summary: RunSummary; events: RxtrainEvent[] }> {
  const config = await loadConfig(REMOTE_CONFIG, {
    stages: builtinStages,
    overrides: [...QUICK, ...FAST_RETRY, ...overrides],
  });
  const events: RxtrainEvent[] = [];
  const runDir = tempDir();
  try {
    const summary = await runExperiment({ config, runDir, cacheDir, onEvent: (e) => events.push(e) });
    return { summary, events };
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** Every file below the cache's downloads/ directory, relative to it. */
export function cacheFiles(cacheDir: string): string[] {
  const root = join(cacheDir, 'downloads');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else out.push(relative(root, join(dir, e.name)));
    }
  };
  walk(root);
  return out.sort();
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * The cache holds exactly one complete, verified copy of `expected` (its record agreeing), or,
 * with `expected` undefined, nothing at all: no partial file, no lock.
 */
export function assertCache(t: ExecutionContext, cacheDir: string, expected: Uint8Array | undefined): void {
  const files = cacheFiles(cacheDir);
  if (!expected) {
    t.deepEqual(files, [], 'the cache holds nothing');
    return;
  }
  const data = files.filter((f) => !f.endsWith('.json'));
  t.is(data.length, 1, `one cached file, got ${files.join(', ')}`);
  t.is(files.length, 2, `the file and its record, got ${files.join(', ')}`);
  const path = join(cacheDir, 'downloads', data[0]!);
  const bytes = readFileSync(path);
  t.is(sha256(bytes), sha256(expected), 'the cached file is the served file');
  const record = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
  t.is(record.sha256, sha256(expected));
  t.is(record.size, expected.byteLength);
}
