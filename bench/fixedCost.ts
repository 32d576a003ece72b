/**
 * The fixed-cost rows of `npm run bench`: what rxtrain costs before and around its training.
 *
 * - fixed cost: the default experiment cut to one update and one evaluation (`sgd.steps=1`,
 *   `evaluate.atStart=false`; `epochs: 0` is not a valid config), first run and rerun;
 * - `rxtrain --version` and time from process start to the first stage, from the bundle and from
 *   tsc's modules (RXTRAIN_BUNDLE=0);
 * - the warm data-stage cache replayed in-process (read, checked, unpacked, kept by the stores)
 *   against `fs.readFileSync` of the same file, taking turns;
 * - peak RSS of the default experiment through `npx rxtrain run`, as a user of the package runs it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExampleStore } from '../src/pipeline/exampleStore.js';
import { openCacheFile, unpackRecord } from '../src/pipeline/stageCacheFile.js';
import { fmt, measure, median, ROOT, ratio, rxtrain, timeToFirstStage } from './measure.js';

export interface FixedCostFigures {
  replayMs: number;
  readFileMs: number;
  npxRssMB: number;
  coldWall: number;
  warmWall: number;
}

const CONFIG = 'config/mnist-logreg.yaml';
const ONE_STEP = ['sgd.steps=1', 'evaluate.atStart=false'];

/** Replay the cache file in-process as a run does; milliseconds. */
async function replayOnce(path: string, key: string): Promise<number> {
  const t0 = performance.now();
  const file = await openCacheFile(path, key);
  if (typeof file === 'string') throw new Error(`${path}: ${file}`);
  const stores = new Map<string, ExampleStore>();
  for (let i = 0; i < file.records.length; i++) {
    for (const m of unpackRecord(file.bytes(i))) {
      if (m.kind !== 'examples') continue;
      if (!stores.has(m.split)) stores.set(m.split, new ExampleStore(m.split));
      stores.get(m.split)!.add(m);
    }
  }
  file.close();
  return performance.now() - t0;
}

function readOnce(path: string): number {
  const t0 = performance.now();
  readFileSync(path);
  return performance.now() - t0;
}

export async function fixedCostBench(o: { runs: number; log: (line: string) => void }): Promise<{
  lines: string[];
  figures: FixedCostFigures;
}> {
  const times = <T>(f: () => T) => Array.from({ length: o.runs }, f);
  const cacheDir = mkdtempSync(join(tmpdir(), 'rxbench-fixed-'));
  try {
    o.log('rxtrain: fixed cost (one update, one evaluation), first runs and reruns');
    const cold = times(() => rxtrain(CONFIG, ONE_STEP));
    rxtrain(CONFIG, ONE_STEP, { cacheDir });
    const warm = times(() => rxtrain(CONFIG, ONE_STEP, { cacheDir }));
    const warmModules = times(() => rxtrain(CONFIG, ONE_STEP, { cacheDir, env: { RXTRAIN_BUNDLE: '0' } }));

    o.log('rxtrain --version');
    const version = (env: NodeJS.ProcessEnv) =>
      median(
        Array.from(
          { length: Math.max(5, o.runs) },
          () => measure([join(ROOT, 'bin/rxtrain.js'), '--version'], { ...process.env, ...env }).wall,
        ),
      );
    const versionBundle = version({});
    const versionModules = version({ RXTRAIN_BUNDLE: '0' });

    o.log('data-stage cache replay against fs.readFileSync');
    const name = readdirSync(join(cacheDir, 'stages')).find((f) => f.endsWith('.rxdata'))!;
    const path = join(cacheDir, 'stages', name);
    const key = name.slice(0, -'.rxdata'.length);
    const replays: number[] = [];
    const reads: number[] = [];
    for (let i = 0; i < Math.max(3, o.runs); i++) {
      replays.push(await replayOnce(path, key));
      reads.push(readOnce(path));
    }

    o.log('rxtrain through npx: peak RSS');
    const npx = times(() => rxtrain(CONFIG, [], { cacheDir, npx: true }));

    const m = (
      runs: ReturnType<typeof rxtrain>[],
      f: (r: ReturnType<typeof rxtrain>) => number | undefined,
    ) => median(runs.map((r) => f(r) ?? Number.NaN));
    const figures: FixedCostFigures = {
      replayMs: median(replays),
      readFileMs: median(reads),
      npxRssMB: m(npx, (r) => r.rssMB),
      coldWall: m(cold, (r) => r.wall),
      warmWall: m(warm, (r) => r.wall),
    };
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    const lines = [
      'Fixed costs (the default experiment cut to one update and one evaluation; medians):',
      '',
      '| | wall (s) | CPU (s) | peak RSS (MB) | start to first stage (s) | data ready (ms after run start) |',
      '| --- | --- | --- | --- | --- | --- |',
      ...(
        [
          ['first run (empty cache)', cold],
          ['rerun (warm cache)', warm],
          ['rerun, from tsc’s modules (RXTRAIN_BUNDLE=0)', warmModules],
        ] as const
      ).map(
        ([label, runs]) =>
          `| fixed cost, ${label} | ${fmt(m(runs, (r) => r.wall))} | ${fmt(m(runs, (r) => r.cpu))} | ${fmt(
            m(runs, (r) => r.rssMB),
            0,
          )} | ${fmt(m(runs, timeToFirstStage))} | ${fmt(
            m(runs, (r) => r.summary.dataMs),
            0,
          )} |`,
      ),
      '',
      `- \`rxtrain --version\`: ${fmt(versionBundle)} s from the bundle, ${fmt(versionModules)} s from tsc's modules (median of ${Math.max(5, o.runs)})`,
      `- fixed cost, first run / rerun: ${ratio(figures.coldWall, figures.warmWall)}`,
      `- warm cache replay in-process (${mb(readFileSync(path).byteLength)} MB: one read, CRC and structure check, unpacked, kept by the stores): ${fmt(figures.replayMs, 0)} ms; \`fs.readFileSync\` of the same file: ${fmt(figures.readFileMs, 0)} ms; replay / read ${ratio(figures.replayMs, figures.readFileMs)} (turns of ${replays.length}: ${replays.map((x) => x.toFixed(0)).join(', ')} / ${reads.map((x) => x.toFixed(0)).join(', ')} ms)`,
      `- default experiment through \`npx rxtrain run\`: peak RSS ${fmt(figures.npxRssMB, 0)} MB (wall ${fmt(m(npx, (r) => r.wall))} s, npx's own start included)`,
    ];
    return { lines, figures };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
