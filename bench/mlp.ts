/**
 * The MLP row of `npm run bench`: rxtrain's config/mnist-mlp.yaml beside PyTorch training the same
 * layers with the same initialisation scheme, recipe and evaluation cadence (bench/peers/torch_mlp.py,
 * its arguments read off the config's resolved settings, so the two cannot drift apart).
 *
 * Columns: whole-process wall time, CPU time (user + system, all threads: the figure that
 * contention on a shared machine does not inflate) and peak RSS, final test accuracy (medians of
 * --runs; rxtrain and PyTorch take turns, so both meet the same load), and training samples/s — rxtrain's through the whole pipeline in runs without intermediate
 * evaluations (and in brackets the updater alone, in-process), PyTorch's loop without its
 * evaluations.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { type Architecture, describeArchitecture, initialMlpWeights } from '../src/kernels/architecture.js';
import { MlpKernel } from '../src/kernels/mlp.js';
import { ModelSgd } from '../src/kernels/sgdStep.js';
import { loadConfig } from '../src/pipeline/config.js';
import { builtinStages } from '../src/stages/index.js';
import type { SgdSettings } from '../src/stages/sgd.js';
import { Prng } from '../src/util/random.js';
import { DATA, fmt, kilo, median, peer, pythonHas, ROOT, ratio, rxtrain, trainingRate } from './measure.js';

const CONFIG = 'config/mnist-mlp.yaml';

export interface MlpOptions {
  runs: number;
  python: boolean;
  log: (line: string) => void;
}

/** The config's sgd settings and evaluation interval. */
async function recipe(): Promise<{ sgd: SgdSettings; evalEvery: number }> {
  const config = await loadConfig(join(ROOT, CONFIG), { stages: builtinStages });
  const sgd = config.stages.find((s) => s.type === 'sgd')!.settings as SgdSettings;
  const evaluate = config.stages.find((s) => s.type === 'evaluate')?.settings as
    | { every: number }
    | undefined;
  return { sgd, evalEvery: evaluate?.every ?? 0 };
}

/** torch_mlp.py's arguments for the same model and recipe. */
function torchArgs(sgd: SgdSettings, evalEvery: number): string[] {
  const m = sgd.model;
  if (m.type !== 'mlp') throw new Error(`${CONFIG}: sgd.model is not an MLP`);
  const schedule = sgd.schedule.type;
  if (schedule !== 'constant' && schedule !== 'cosine')
    throw new Error(`the peer has no ${schedule} schedule`);
  if (
    (schedule === 'cosine' && sgd.schedule.min !== 0) ||
    sgd.warmup ||
    sgd.weightDecay ||
    sgd.clipNorm ||
    sgd.nesterov
  )
    throw new Error('the peer runs plain or momentum SGD with a constant or cosine-to-0 schedule only');
  return [
    ...['--hidden', ...m.hidden.map(String)],
    ...['--activation', m.activation, '--init', m.init, '--std', String(m.std)],
    ...['--batch', String(sgd.batchSize), '--lr', String(sgd.lr), '--momentum', String(sgd.momentum)],
    ...['--epochs', String(sgd.epochs), '--schedule', schedule, '--eval-every', String(evalEvery)],
  ];
}

/** The updater alone: ModelSgd steps of the MLP over MNIST bytes, in-process; the best of 3 passes. */
function updaterRate(sgd: SgdSettings): number {
  const m = sgd.model;
  if (m.type !== 'mlp') return Number.NaN;
  const a: Architecture = {
    type: 'mlp',
    inputShape: [28, 28],
    bias: true,
    hidden: m.hidden,
    activation: m.activation,
    classes: 10,
  };
  const images = readFileSync(join(DATA, 'train-images-idx3-ubyte')).subarray(16);
  const labels = Int32Array.from(readFileSync(join(DATA, 'train-labels-idx1-ubyte')).subarray(8));
  const batch = sgd.batchSize;
  const kernel = new MlpKernel(a, false, batch);
  kernel.writeWeights(initialMlpWeights(a, m.init, m.std, new Prng(0)));
  const step = new ModelSgd(kernel, sgd);
  const t = { width: 784, scale: new Float32Array(784).fill(1 / 255), shift: null, bias: true };
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const t0 = performance.now();
    const steps = Math.floor(labels.length / batch);
    for (let i = 0; i < steps; i++) step.step(images, labels, i * batch, batch, t, sgd.lr * 0.1);
    best = Math.max(best, (steps * batch) / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** The BLAS behind Debian's libblas.so.3 (PyTorch's matrix products), when it can be told. */
function blasLibrary(): string {
  try {
    return realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3');
  } catch {
    return 'unknown';
  }
}

export interface MlpFigures {
  rx: { wall: number; rssMB: number; accuracy: number };
  torch?: { wall: number; rssMB: number; accuracy: number };
}

/** Measure the row; returns the lines of its table and the figures. */
export async function mlpBench(o: MlpOptions): Promise<{ lines: string[]; figures: MlpFigures }> {
  const { sgd, evalEvery } = await recipe();
  const m = sgd.model;
  if (m.type !== 'mlp') throw new Error(`${CONFIG}: sgd.model is not an MLP`);
  const times = <T>(f: () => T) => Array.from({ length: o.runs }, f);
  const withTorch = o.python && pythonHas('torch');
  const args = torchArgs(sgd, evalEvery);
  // rxtrain and PyTorch take turns, so that both meet the same load on a shared machine
  const runs: ReturnType<typeof rxtrain>[] = [];
  const peers: ReturnType<typeof peer>[] = [];
  for (let i = 0; i < o.runs; i++) {
    o.log(`rxtrain: ${CONFIG} (${i + 1}/${o.runs})`);
    runs.push(rxtrain(CONFIG));
    if (!withTorch) continue;
    o.log(`PyTorch: the same MLP (${i + 1}/${o.runs})`);
    peers.push(peer('torch_mlp.py', args));
  }
  const rx = {
    wall: median(runs.map((r) => r.wall)),
    cpu: median(runs.map((r) => r.cpu ?? Number.NaN)),
    rssMB: median(runs.map((r) => r.rssMB ?? Number.NaN)),
    accuracy: median(runs.map((r) => r.summary.test?.accuracy ?? Number.NaN)),
    sps: median(times(() => trainingRate(rxtrain(CONFIG, ['evaluate.every=0'])))),
    accuracies: runs.map((r) => r.summary.test?.accuracy ?? Number.NaN),
  };
  const updater = updaterRate(sgd);

  const a = {
    type: 'mlp',
    inputShape: [28, 28],
    bias: true,
    hidden: m.hidden,
    activation: m.activation,
    classes: 10,
  };
  const lines = [
    `MLP (\`${CONFIG}\`: ${describeArchitecture(a as Architecture)}, ${m.init} init, batch ${sgd.batchSize}, lr ${sgd.lr} ${sgd.schedule.type}${sgd.momentum ? `, momentum ${sgd.momentum}` : ''}, ${sgd.epochs} epochs, evaluated every ${evalEvery} steps; the two take turns):`,
    '',
    '| | wall (s) | CPU (s) | peak RSS (MB) | test accuracy | training samples/s |',
    '| --- | --- | --- | --- | --- | --- |',
    `| rxtrain \`${CONFIG}\` | ${fmt(rx.wall)} | ${fmt(rx.cpu)} | ${fmt(rx.rssMB, 0)} | ${fmt(rx.accuracy, 4)} | ${kilo(rx.sps)} (updater alone ${kilo(updater)}) |`,
  ];
  let note = '';
  const figures: MlpFigures = { rx };
  if (!o.python) lines.push('| PyTorch | skipped (--no-python) | | | | |');
  else if (!withTorch) lines.push('| PyTorch | skipped: python3-torch is not installed | | | | |');
  else {
    const pt = {
      wall: median(peers.map((r) => r.wall)),
      cpu: median(peers.map((r) => r.cpu ?? Number.NaN)),
      rssMB: median(peers.map((r) => r.rssMB ?? Number.NaN)),
      accuracy: median(peers.map((r) => r.out.accuracy ?? Number.NaN)),
      sps: median(peers.map((r) => r.out.samples_per_sec ?? Number.NaN)),
    };
    figures.torch = pt;
    const points = (rx.accuracy - pt.accuracy) * 100;
    lines.push(
      `| PyTorch, same layers, init and recipe | ${fmt(pt.wall)} | ${fmt(pt.cpu)} | ${fmt(pt.rssMB, 0)} | ${fmt(pt.accuracy, 4)} | ${kilo(pt.sps)} |`,
      `| ↳ rxtrain / PyTorch | ${ratio(rx.wall, pt.wall)} | ${ratio(rx.cpu, pt.cpu)} | ${ratio(rx.rssMB, pt.rssMB)} | ${Number.isFinite(points) ? `${points >= 0 ? '+' : '−'}${Math.abs(points).toFixed(2)} points` : '–'} | ${ratio(rx.sps, pt.sps)} |`,
    );
    const info = peers[0]!.out;
    note = `PyTorch ${info.version}, ${info.threads} thread(s), BLAS ${blasLibrary()}; walls ${peers.map((r) => r.wall.toFixed(2)).join(', ')} s (rxtrain ${runs.map((r) => r.wall.toFixed(2)).join(', ')} s); test accuracies: ${peers.map((r) => r.out.accuracy?.toFixed(4)).join(', ')}; peer: bench/peers/torch_mlp.py ${args.join(' ')}`;
  }
  lines.push('', `rxtrain test accuracies: ${rx.accuracies.map((x) => x.toFixed(4)).join(', ')}`);
  if (note) lines.push(note);
  return { lines, figures };
}
