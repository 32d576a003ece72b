/**
 * The fixed-cost rows of `npm run bench`: what rxtrain costs before and around its training.
 *
 * - fixed cost: the default experiment cut to one update and one evaluation (`sgd.steps=1`,
 *   `evaluate.atStart=false`; `epochs: 0` is not a valid config), first run and rerun;
 * - `rxtrain --version` and time from process start to the first stage, from the bundle and from
 *   tsc's modules (RXTRAIN_BUNDLE=0);
 * - the default's data stages in-process (its plain IDX files read directly, decoded, kept by the
 *   stores) against `fs.readFileSync` of the same files, taking turns;
 * - a warm data-stage cache replayed in-process (read, checked, unpacked, kept by the stores)
 *   against `fs.readFileSync` of the same file, taking turns: the cache of the default with its
 *   features standardised from the data (plain files alone are not cached);
 * - peak RSS of the default experiment through `npx rxtrain run`, as a user of the package runs it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedMnistDir } from '../src/download/sources.js';
import { consume } from '../src/flow/index.js';
import { buildPipeline } from '../src/pipeline/compose.js';
import { configFromObject, type ExperimentConfig } from '../src/pipeline/config.js';
import { EventBus, systemClock } from '../src/pipeline/events.js';
import { ExampleStore } from '../src/pipeline/exampleStore.js';
import type { Message } from '../src/pipeline/messages.js';
import { openCacheFile, unpackRecord } from '../src/pipeline/stageCacheFile.js';
import { builtinStages } from '../src/stages/index.js';
import { fmt, measure, median, ROOT, ratio, rxtrain, timeToFirstStage } from './measure.js';

export interface FixedCostFigures {
  replayMs: number;
  readFileMs: number;
  directMs: number;
  readFilesMs: number;
  npxRssMB: number;
  coldWall: number;
  warmWall: number;
}

const CONFIG = 'config/mnist-logreg.yaml';
const ONE_STEP = ['sgd.steps=1', 'evaluate.atStart=false'];

/** Keep examples messages as the stores of shuffle and evaluate do. */
function storing() {
  const stores = new Map<string, ExampleStore>();
  return (m: Message) => {
    if (m.kind !== 'examples') return;
    if (!stores.has(m.split)) stores.set(m.split, new ExampleStore(m.split));
    stores.get(m.split)!.add(m);
  };
}

/** Replay the cache file in-process as a run does; milliseconds. */
async function replayOnce(path: string, key: string): Promise<number> {
  const t0 = performance.now();
  const file = await openCacheFile(path, key);
  if (typeof file === 'string') throw new Error(`${path}: ${file}`);
  const keep = storing();
  for (let i = 0; i < file.records.length; i++) for (const m of unpackRecord(file.bytes(i))) keep(m);
  file.close();
  return performance.now() - t0;
}

/** The default experiment's data stages in-process, as a run reads them; milliseconds. */
async function directOnce(config: ExperimentConfig, cacheDir: string): Promise<number> {
  const t0 = performance.now();
  const pipeline = buildPipeline(config, {
    events: new EventBus(systemClock),
    clock: systemClock,
    cacheDir,
    stopSignal: new AbortController().signal,
    sliceMs: 25,
  });
  await consume(pipeline.flow, storing()).done;
  return performance.now() - t0;
}

function readOnce(paths: readonly string[]): number {
  const t0 = performance.now();
  for (const path of paths) readFileSync(path);
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

    o.log('data stages (plain files read directly) against fs.readFileSync');
    const dataConfig = await configFromObject(
      {
        name: 'data-stages',
        stages: [
          { type: 'fetch', url: 'embedded:mnist' },
          { type: 'untar' },
          { type: 'decodeIdx' },
          { type: 'normalise' },
        ],
      },
      { stages: builtinStages },
    );
    const files = readdirSync(embeddedMnistDir()).map((f) => join(embeddedMnistDir(), f));
    const directs: number[] = [];
    const fileReads: number[] = [];
    for (let i = 0; i < Math.max(3, o.runs); i++) {
      directs.push(await directOnce(dataConfig, cacheDir));
      fileReads.push(readOnce(files));
    }

    o.log('data-stage cache replay against fs.readFileSync');
    rxtrain(CONFIG, [...ONE_STEP, 'normalise.standardise=global'], { cacheDir });
    const name = readdirSync(join(cacheDir, 'stages')).find((f) => f.endsWith('.rxdata'))!;
    const path = join(cacheDir, 'stages', name);
    const key = name.slice(0, -'.rxdata'.length);
    const replays: number[] = [];
    const reads: number[] = [];
    for (let i = 0; i < Math.max(3, o.runs); i++) {
      replays.push(await replayOnce(path, key));
      reads.push(readOnce([path]));
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
      directMs: median(directs),
      readFilesMs: median(fileReads),
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
      `- the default's data stages in-process (the ${files.length} plain IDX files, ${mb(files.reduce((n, f) => n + statSync(f).size, 0))} MB: read, decoded, kept by the stores; no cache): ${fmt(figures.directMs, 0)} ms; \`fs.readFileSync\` of the same files: ${fmt(figures.readFilesMs, 0)} ms; data stages / read ${ratio(figures.directMs, figures.readFilesMs)} (turns of ${directs.length}: ${directs.map((x) => x.toFixed(0)).join(', ')} / ${fileReads.map((x) => x.toFixed(0)).join(', ')} ms)`,
      `- warm cache replay in-process (the default's data with \`normalise.standardise: global\`, which is cached; ${mb(statSync(path).size)} MB: one read, CRC and structure check, unpacked, kept by the stores): ${fmt(figures.replayMs, 0)} ms; \`fs.readFileSync\` of the same file: ${fmt(figures.readFileMs, 0)} ms; replay / read ${ratio(figures.replayMs, figures.readFileMs)} (turns of ${replays.length}: ${replays.map((x) => x.toFixed(0)).join(', ')} / ${reads.map((x) => x.toFixed(0)).join(', ')} ms)`,
      `- default experiment through \`npx rxtrain run\`: peak RSS ${fmt(figures.npxRssMB, 0)} MB (wall ${fmt(m(npx, (r) => r.wall))} s, npx's own start included)`,
    ];
    return { lines, figures };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
