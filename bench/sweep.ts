/**
 * bench:sweep — the figures issue 14 asks for, measured with the real CLI on the real MNIST:
 *
 *   throughput  config/mnist-sweep.yaml (24 trials) run one at a time as plain `rxtrain run`s, and
 *               as `rxtrain sweep --parallel 2` and `--parallel 1`, in --rounds rounds (order rotated;
 *               medians reported): the throughput ratio (plain runs ÷ parallel sweep), and
 *               --parallel 1 ÷ --parallel 2; the sweep's overhead per trial: the --parallel 1
 *               sweep's wall time less its trials' attempt times (the scheduler's own), and less
 *               the runs' own durationMs (everything beyond the runs: trial hosts' start, IPC,
 *               scheduling), ÷ 24; each plain run's process time outside its run (start-up,
 *               exit); and the machine's own scaling then: two plain runs side by side against
 *               one by one
 *   kill        the same sweep SIGKILLed — its whole process group — at 3 random moments, resumed
 *               after each with `sweep resume`: run directories, `run-finished` events per trial,
 *               trials started again after they were done, and each weightsSha256 against the
 *               uninterrupted --parallel 2 sweep
 *   asha        config/mnist-asha.yaml (27 random configurations) with ASHA, and the same sample
 *               without a scheduler: SGD steps spent and the best validation accuracy (with that
 *               trial's test accuracy)
 *   report      `rxtrain report` of the parallel sweep, opened in headless Chromium: console
 *               messages, requests, the charts drawn, and a full-page screenshot
 *
 * Every sweep sets checkpoint.every=500, so a killed trial has checkpoints to resume from. Usage:
 *
 *   npm run bench:sweep -- [--only throughput,kill,asha,report] [--dir DIR] [--seed S] [--epochs E]
 *                          [--rounds 3]
 *
 * Writes results.json and the screenshot into the output directory and prints a summary.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { parseEvents } from '../src/pipeline/events.js';
import { builtinStages } from '../src/stages/index.js';
import { planSweep } from '../src/sweep/plan.js';
import { loadSweep } from '../src/sweep/sweepFile.js';
import type { SweepState } from '../src/sweep/sweepState.js';
import type { SweepSummary } from '../src/sweep/sweepSummary.js';
import { Prng } from '../src/util/random.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/rxtrain.js');

interface Exit {
  code: number | null;
  signal: string | null;
  seconds: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the CLI to the end, as the installed command (its first line's options, which its trials
 * inherit), in a process group of its own (to SIGKILL it whole).
 */
function cli(args: string[], options: { killAfterMs?: number } = {}): Promise<Exit> {
  const started = performance.now();
  const child = spawn(BIN, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer =
    options.killAfterMs === undefined
      ? undefined
      : setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), options.killAfterMs);
  return new Promise((resolvePromise) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, seconds: (performance.now() - started) / 1000, stdout, stderr });
    }),
  );
}

const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const state = (dir: string) => readJson<SweepState>(join(dir, 'sweep.json'));
const summary = (dir: string) => readJson<SweepSummary>(join(dir, 'sweep-summary.json'));
const weightsOf = (dir: string) => new Map(state(dir).trials.map((t) => [t.id, t.weightsSha256]));

/** The median of a list of numbers. */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Rounds of: the 24 trials as plain runs one at a time, the sweep with --parallel 2, and with
 * --parallel 1, in an order rotated each round. The machine is shared, so its load drifts over
 * minutes: each round's ratio compares measurements taken minutes apart, and the median of the
 * rounds is the figure.
 */
async function throughput(out: string, cache: string, set: string[], rounds: number) {
  const file = join(ROOT, 'config/mnist-sweep.yaml');
  const spec = await loadSweep(file, { stages: builtinStages, overrides: set, inlineBaseFile: () => '' });
  const plan = await planSweep(spec);
  const n = plan.trials.length;
  // The data decoded once into the cache first, as it would be for any of the three.
  await cli([
    'run',
    spec.base.file,
    ...set.flatMap((s) => ['--set', s]),
    '--run-dir',
    join(out, 'warm'),
    '--cache',
    cache,
    '--quiet',
  ]);
  const plainWeights = new Map<string, string | undefined>();
  const sequentially = async (round: number) => {
    let seconds = 0;
    let startup = 0;
    for (const t of plan.trials) {
      const dir = join(out, `sequential-${round}`, t.id);
      const r = await cli([
        'run',
        spec.base.file,
        ...t.overrides.flatMap((s) => ['--set', s]),
        '--run-dir',
        dir,
        '--cache',
        cache,
        '--quiet',
      ]);
      if (r.code !== 0) throw new Error(r.stderr);
      seconds += r.seconds;
      const summary = readJson<{ weightsSha256?: string; durationMs: number }>(join(dir, 'summary.json'));
      startup += r.seconds - summary.durationMs / 1000;
      plainWeights.set(t.id, summary.weightsSha256);
    }
    return { seconds, processOutsideRunSeconds: startup / n };
  };
  // The machine's own scaling at this moment: two plain runs side by side against one after another.
  const pairScaling = async (round: number) => {
    const [a, b] = plan.trials;
    const run = (t: typeof a, tag: string) =>
      cli([
        'run',
        spec.base.file,
        ...t!.overrides.flatMap((s) => ['--set', s]),
        '--run-dir',
        join(out, `pair-${round}`, tag),
        '--cache',
        cache,
        '--quiet',
      ]);
    let started = performance.now();
    await run(a, 'a1');
    await run(b, 'b1');
    const oneByOne = (performance.now() - started) / 1000;
    started = performance.now();
    await Promise.all([run(a, 'a2'), run(b, 'b2')]);
    return oneByOne / ((performance.now() - started) / 1000);
  };
  const sweepWith = async (parallel: number, round: number) => {
    const dir = join(out, `parallel-${parallel}-${round}`);
    const r = await cli([
      'sweep',
      file,
      ...set.flatMap((s) => ['--set', s]),
      '--sweep-dir',
      dir,
      '--cache',
      cache,
      '--parallel',
      String(parallel),
      '--quiet',
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
    // The runs' own time: each trial's summary.json durationMs (what a run takes inside its process).
    const runSeconds = summary(dir).trials.reduce(
      (sum, x) =>
        sum + readJson<{ durationMs: number }>(join(dir, 'trials', x.id, 'summary.json')).durationMs / 1000,
      0,
    );
    return { dir, seconds: r.seconds, trialSeconds: summary(dir).trialMs / 1000, runSeconds };
  };
  const perRound = [];
  let reference: string | undefined;
  for (let round = 1; round <= rounds; round++) {
    type Sweep = Awaited<ReturnType<typeof sweepWith>>;
    const r = {} as {
      sequential: Awaited<ReturnType<typeof sequentially>>;
      parallel2: Sweep;
      parallel1: Sweep;
    };
    const parts = {
      sequential: async () => (r.sequential = await sequentially(round)),
      parallel2: async () => (r.parallel2 = await sweepWith(2, round)),
      parallel1: async () => (r.parallel1 = await sweepWith(1, round)),
    };
    const order = Object.keys(parts) as (keyof typeof parts)[];
    for (let k = 1; k < round; k++) order.push(order.shift()!);
    for (const name of order) await parts[name]();
    const pair = await pairScaling(round);
    reference ??= r.parallel2.dir;
    perRound.push({
      round,
      order: order.join(' → '),
      sequentialSeconds: r.sequential.seconds,
      sweepParallel2Seconds: r.parallel2.seconds,
      sweepParallel1Seconds: r.parallel1.seconds,
      throughputRatio: r.sequential.seconds / r.parallel2.seconds,
      sweepOverheadPerTrialSeconds: (r.parallel1.seconds - r.parallel1.trialSeconds) / n,
      beyondRunsPerTrialSeconds: (r.parallel1.seconds - r.parallel1.runSeconds) / n,
      parallel2OverParallel1: r.parallel1.seconds / r.parallel2.seconds,
      parallel1VsPlainPerTrialSeconds: (r.parallel1.seconds - r.sequential.seconds) / n,
      processOutsideRunSeconds: r.sequential.processOutsideRunSeconds,
      twoPlainRunsSideBySideRatio: pair,
    });
    console.log(JSON.stringify(perRound.at(-1)));
  }
  const same = [...weightsOf(reference!)].every(([id, sha]) => plainWeights.get(id) === sha);
  return {
    trials: n,
    rounds: perRound,
    medianThroughputRatio: median(perRound.map((r) => r.throughputRatio)),
    medianSweepOverheadPerTrialSeconds: median(perRound.map((r) => r.sweepOverheadPerTrialSeconds)),
    medianBeyondRunsPerTrialSeconds: median(perRound.map((r) => r.beyondRunsPerTrialSeconds)),
    medianParallel2OverParallel1: median(perRound.map((r) => r.parallel2OverParallel1)),
    medianParallel1VsPlainPerTrialSeconds: median(perRound.map((r) => r.parallel1VsPlainPerTrialSeconds)),
    medianProcessOutsideRunSeconds: median(perRound.map((r) => r.processOutsideRunSeconds)),
    medianTwoPlainRunsSideBySideRatio: median(perRound.map((r) => r.twoPlainRunsSideBySideRatio)),
    weightsAsPlainRuns: same,
    sweepDir: reference!,
  };
}

/**
 * SIGKILL of the sweep's process group at 3 random moments, each within the first quarter (plus
 * 1.5 s of start-up) of the uninterrupted sweep's wall time `sweepMs`, so that every kill lands
 * while trials are still to run.
 */
async function kill(
  out: string,
  cache: string,
  set: string[],
  reference: string,
  seed: number,
  sweepMs: number,
) {
  const file = join(ROOT, 'config/mnist-sweep.yaml');
  const dir = join(out, 'killed');
  const rng = new Prng(seed);
  const moments: { afterMs: number; done: number; running: number; withCheckpoint: number }[] = [];
  const doneBefore = new Set<string>();
  for (let k = 0; k < 3; k++) {
    const afterMs = 1500 + rng.int(Math.max(1000, Math.round(sweepMs / 4)));
    const args =
      k === 0
        ? ['sweep', file, ...set.flatMap((s) => ['--set', s]), '--sweep-dir', dir]
        : ['sweep', 'resume', dir];
    const r = await cli([...args, '--cache', cache, '--parallel', '2', '--quiet'], { killAfterMs: afterMs });
    const s = state(dir);
    const running = s.trials.filter((t) => t.status === 'running');
    const withCheckpoint = running.filter((t) => {
      const c = join(dir, 'trials', t.id, 'checkpoints');
      return existsSync(c) && readdirSync(c).some((f) => f.endsWith('.rxckpt'));
    });
    moments.push({
      afterMs,
      done: s.trials.filter((t) => t.status === 'done').length,
      running: running.length,
      withCheckpoint: withCheckpoint.length,
    });
    for (const t of s.trials) if (t.status === 'done') doneBefore.add(t.id);
    if (r.signal !== 'SIGKILL') break; // it finished before the moment came
  }
  const final = await cli(['sweep', 'resume', dir, '--cache', cache, '--parallel', '2', '--quiet']);
  const s = state(dir);
  const runDirs = readdirSync(join(dir, 'trials')).length;
  const completedEvents = s.trials.map(
    (t) =>
      parseEvents(readFileSync(join(dir, 'trials', t.id, 'events.ndjson'), 'utf8')).filter(
        (e) => e.type === 'run-finished' && e.status === 'completed',
      ).length,
  );
  // Trials started after a session had recorded them as done.
  const sweepEvents = readFileSync(join(dir, 'events.ndjson'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const doneSoFar = new Set<string>();
  let rerunDone = 0;
  for (const e of sweepEvents) {
    if (e.type === 'trial-started' && doneSoFar.has(e.trial)) rerunDone++;
    if (e.type === 'trial-finished' && e.status === 'done') doneSoFar.add(e.trial);
  }
  const ref = weightsOf(reference);
  const mine = weightsOf(dir);
  const mismatched = [...ref].filter(([id, sha]) => mine.get(id) !== sha).length;
  const resumedFromCheckpoint = s.trials.filter((t) => {
    const sm = readJson<{ resumedFrom?: number }>(join(dir, 'trials', t.id, 'summary.json'));
    return (sm.resumedFrom ?? 0) > 0;
  }).length;
  return {
    seed,
    moments,
    finalExit: final.code,
    planned: s.trials.length,
    runDirs,
    completedRunFinishedPerTrial: [...new Set(completedEvents)],
    trialsStartedAgainAfterDone: rerunDone,
    trialsResumedFromACheckpoint: resumedFromCheckpoint,
    weightsMismatched: mismatched,
    weightsCompared: ref.size,
  };
}

async function asha(out: string, cache: string, set: string[]) {
  const file = join(ROOT, 'config/mnist-asha.yaml');
  const full = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete full.scheduler;
  full.base = join(ROOT, 'config', full.base as string);
  full.name = 'mnist-asha-full';
  const fullFile = join(out, 'mnist-asha-full.yaml');
  writeFileSync(fullFile, stringify(full));
  const run = async (f: string, name: string) => {
    const dir = join(out, name);
    const r = await cli([
      'sweep',
      f,
      ...set.flatMap((s) => ['--set', s]),
      '--sweep-dir',
      dir,
      '--cache',
      cache,
      '--parallel',
      '2',
      '--quiet',
    ]);
    const s = summary(dir);
    const best = s.best
      ? readJson<{ test?: { accuracy: number } }>(join(s.best.runDir, 'summary.json'))
      : undefined;
    return {
      exit: r.code,
      seconds: r.seconds,
      counts: s.counts,
      stepsSpent: s.stepsSpent,
      bestTrial: s.best?.trial,
      bestValAccuracy: s.best?.value,
      bestTestAccuracy: best?.test?.accuracy,
      ids: s.trials.map((t) => t.id).sort(),
    };
  };
  const withAsha = await run(file, 'asha');
  const without = await run(fullFile, 'asha-full');
  return {
    sameSample: JSON.stringify(withAsha.ids) === JSON.stringify(without.ids),
    trials: withAsha.ids.length,
    asha: { ...withAsha, ids: undefined },
    full: { ...without, ids: undefined },
    stepsShare: withAsha.stepsSpent / without.stepsSpent,
    valAccuracyGapPoints: ((without.bestValAccuracy ?? 0) - (withAsha.bestValAccuracy ?? 0)) * 100,
  };
}

async function report(out: string, sweepDir: string) {
  const html = join(out, 'sweep-report.html');
  const made = await cli(['report', sweepDir, '--out', html]);
  if (made.code !== 0) throw new Error(made.stderr);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const url = pathToFileURL(html).href;
    const requests: string[] = [];
    const messages: string[] = [];
    page.on('request', (r) => {
      requests.push(r.url());
    });
    page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
    await page.route(
      (u) => u.href !== url,
      (route) => route.abort(),
    );
    await page.goto(url, { waitUntil: 'load' });
    const charts = await page
      .locator('svg[data-chart]')
      .evaluateAll((s) =>
        s.map((x) => `${x.getAttribute('data-chart')}:${x.querySelectorAll('circle.point, g.cell').length}`),
      );
    const rows = await page.locator('table.trials tr[data-trial]').count();
    const screenshot = join(out, 'sweep-report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    return {
      html,
      screenshot,
      consoleMessages: messages,
      otherRequests: requests.filter((r) => r !== url && !r.startsWith('data:')),
      rows,
      charts,
    };
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', default: 'throughput,kill,asha,report' },
      dir: { type: 'string' },
      seed: { type: 'string' },
      epochs: { type: 'string' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const only = new Set(values.only!.split(','));
  const out = resolve(values.dir ?? mkdtempSync(join(tmpdir(), 'rxtrain-bench-sweep-')));
  mkdirSync(out, { recursive: true });
  const cache = join(out, 'cache');
  const set = ['checkpoint.every=500', ...(values.epochs ? [`sgd.epochs=${values.epochs}`] : [])];
  const seed = Number(values.seed ?? Date.now() % 2 ** 31);
  const results: Record<string, unknown> = { out, set, started: new Date().toISOString() };
  const save = () => writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const say = (name: string, r: unknown) => {
    results[name] = r;
    save();
    console.log(`${name}:`, JSON.stringify(r, null, 2));
  };
  let reference: string | undefined;
  let sweepMs = 0;
  if (only.has('throughput')) {
    const r = await throughput(out, cache, set, Number(values.rounds));
    reference = r.sweepDir;
    sweepMs = median(r.rounds.map((x) => x.sweepParallel2Seconds)) * 1000;
    say('throughput', r);
  }
  if (only.has('kill')) {
    if (!reference) throw new Error('kill compares with the throughput part’s sweep: run it too');
    say('kill', await kill(out, cache, set, reference, seed, sweepMs));
  }
  if (only.has('asha'))
    say(
      'asha',
      await asha(
        out,
        cache,
        set.filter((s) => !s.startsWith('sgd.epochs')),
      ),
    );
  if (only.has('report') && reference) say('report', await report(out, reference));
  console.log(`results in ${join(out, 'results.json')}`);
}

await main();
