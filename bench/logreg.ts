/**
 * The softmax-regression rows of `npm run bench`: rxtrain's default and notebook experiments beside
 * PyTorch, scikit-learn, numpy and the notebook's own code (see bench.ts for the columns).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelSgd } from '../src/kernels/sgdStep.js';
import { SoftmaxRegressionKernel } from '../src/kernels/softmaxRegression.js';
import {
  DATA,
  fmt,
  kilo,
  type Measured,
  median,
  type PeerOut,
  peer,
  pythonHas,
  type RunEvents,
  ratio,
  rxtrain,
  timeToFirstStage,
  trainingRate,
} from './measure.js';

export interface LogregOptions {
  runs: number;
  python: boolean;
  fullNotebook: boolean;
  notebookSteps: number;
  log: (line: string) => void;
}

export interface Row {
  wall: number;
  t092: number;
  rssMB: number;
  accuracy: number;
  sps64?: number;
  sps256?: number;
  note?: string;
}

/** Seconds from process start to the first test evaluation ≥ 0.92. */
function timeTo092(r: Measured & RunEvents): number {
  const e = r.events.find((x) => x.type === 'eval' && x.split === 'test' && (x.accuracy ?? 0) >= 0.92);
  return e ? (Date.parse(e.time) - r.startedAt) / 1000 : Number.NaN;
}

/** Seconds from a peer's process start to the evaluation it reports reaching 0.92 at. */
function peerTimeTo092(r: ReturnType<typeof peer>): number {
  return r.out.t092 ? r.out.t092 - r.startedAt / 1000 : Number.NaN;
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

/** A peer's row from its timed runs, and its training rates at batch 64 and 256 when asked. */
function peerRow(
  runs: ReturnType<typeof peer>[],
  script: string,
  sps?: { 64: string[]; 256: string[] },
): Row & { info: PeerOut } {
  const row: Row & { info: PeerOut } = {
    wall: median(runs.map((r) => r.wall)),
    t092: median(runs.map(peerTimeTo092)),
    rssMB: median(runs.map((r) => r.rssMB ?? Number.NaN)),
    accuracy: median(runs.map((r) => r.out.accuracy ?? Number.NaN)),
    info: runs[0]!.out,
  };
  if (sps) {
    const rate = (args: string[]) =>
      median(Array.from({ length: runs.length }, () => peer(script, args).out.samples_per_sec ?? Number.NaN));
    row.sps64 = rate(sps[64]);
    row.sps256 = rate(sps[256]);
  }
  return row;
}

/** A peer of the main table: its script, the arguments of its timed runs, and of its rates. */
interface PeerSpec {
  name: string;
  script: string;
  args: string[];
  sps?: { 64: string[]; 256: string[] };
}

/** One kind of rxtrain run against the numpy run of the same turn. */
export interface Paired {
  /** Medians of the turns' ratios, rxtrain / numpy. */
  wall: number;
  t092: number;
  /** Every turn's wall ratio, in the order run. */
  wallRatios: number[];
  rxWall: number;
  /** The fastest run: what it costs with the least interference. */
  rxBest: number;
}

export interface HeadToHead {
  pairs: number;
  /** A first run (an empty cache) and a rerun (a warm one), each against the turn's numpy run. */
  cold: Paired;
  warm: Paired;
  numpyWall: number;
  numpyBest: number;
}

/**
 * rxtrain's default experiment (a first run, then a rerun) and the numpy peer, one after the
 * other, `pairs` times. The machines this runs on are shared: a run can take 0.6 s or 0.85 s by
 * what else the host is doing, for minutes at a time, so two medians taken minutes apart can
 * differ by that drift alone. The runs of a turn meet the same conditions, and the median of the
 * turns' ratios does not depend on which conditions the rows above happened to meet.
 */
function headToHead(pairs: number, cacheDir: string, numpyArgs: string[]): HeadToHead {
  const cold: (Measured & RunEvents)[] = [];
  const warm: (Measured & RunEvents)[] = [];
  const np: ReturnType<typeof peer>[] = [];
  for (let i = 0; i < pairs; i++) {
    cold.push(rxtrain('config/mnist-logreg.yaml'));
    warm.push(rxtrain('config/mnist-logreg.yaml', [], { cacheDir }));
    np.push(peer('numpy_sgd.py', numpyArgs));
  }
  const against = (rx: (Measured & RunEvents)[]): Paired => {
    const wallRatios = rx.map((r, i) => r.wall / np[i]!.wall);
    return {
      wall: median(wallRatios),
      t092: median(rx.map((r, i) => timeTo092(r) / peerTimeTo092(np[i]!))),
      wallRatios,
      rxWall: median(rx.map((r) => r.wall)),
      rxBest: Math.min(...rx.map((r) => r.wall)),
    };
  };
  return {
    pairs,
    cold: against(cold),
    warm: against(warm),
    numpyWall: median(np.map((r) => r.wall)),
    numpyBest: Math.min(...np.map((r) => r.wall)),
  };
}

/** What the must-show block (bench.ts) compares. */
export interface LogregFigures {
  cold: Row;
  warm: Row & { dataMs: number; firstStage: number };
  numpy?: Row;
  /** rxtrain's first run, its rerun and numpy's SGD run in turns (headToHead): each turn's ratios. */
  paired?: HeadToHead;
  /** PyTorch's recipe with the shortest wall, and its name. */
  torchFastest?: Row & { name: string };
  torchSameRecipe?: Row;
  notebookSpeedup?: number;
  notebookRerunSpeedup?: number;
  notebookExtrapolated?: boolean;
}

/** Measure the rows; returns the lines of their tables and the figures. */
export function logregBench(o: LogregOptions): { lines: string[]; figures: LogregFigures } {
  const { log } = o;
  const RUNS = o.runs;
  const args = {
    'no-python': !o.python,
    'full-notebook': o.fullNotebook,
    'notebook-steps': String(o.notebookSteps),
  };
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
  const peers: Record<string, (Row & { info: PeerOut }) | string> = {};
  const specs: PeerSpec[] = [];
  // Asked once: each answer starts a Python process. The numpy peer, the pairs and the notebook need it.
  const hasNumpy = !args['no-python'] && pythonHas('numpy');
  if (!args['no-python']) {
    if (pythonHas('torch')) {
      const torch = (name: string, runArgs: string[], sps?: PeerSpec['sps']) =>
        specs.push({ name, script: 'torch_sgd.py', args: runArgs, ...(sps ? { sps } : {}) });
      torch('PyTorch, same recipe (b64, lr 1 cosine)', sgdArgs(64, 1, ['--schedule', 'cosine']), spsArgs);
      torch('PyTorch b64 lr 0.1', sgdArgs(64, 0.1));
      torch('PyTorch b256 lr 0.5', sgdArgs(256, 0.5));
    } else peers['PyTorch'] = 'skipped: python3-torch is not installed';
    if (pythonHas('sklearn'))
      specs.push({ name: 'scikit-learn lbfgs', script: 'sklearn_lbfgs.py', args: [] });
    else peers['scikit-learn'] = 'skipped: python3-sklearn is not installed';
    if (hasNumpy)
      specs.push({
        name: 'numpy SGD b64 lr 0.1',
        script: 'numpy_sgd.py',
        args: sgdArgs(64, 0.1),
        sps: spsArgs,
      });
    else peers['numpy'] = 'skipped: python3-numpy is not installed';
  }

  // The rows' timed runs take turns (a first run, a rerun, then each peer once, RUNS times): the
  // host's speed drifts, and a row measured in one stretch must not be compared with one measured
  // in another (see headToHead).
  const cacheDir = mkdtempSync(join(tmpdir(), 'rxbench-warm-'));
  rxtrain('config/mnist-logreg.yaml', [], { cacheDir });
  const defaults: (Measured & RunEvents)[] = [];
  const reruns: (Measured & RunEvents)[] = [];
  const peerRuns = new Map(specs.map((spec) => [spec.name, [] as ReturnType<typeof peer>[]]));
  for (let turn = 0; turn < RUNS; turn++) {
    log(
      `turn ${turn + 1} of ${RUNS}: rxtrain's default (a first run, a rerun)${specs.map((p) => `, ${p.name}`).join('')}`,
    );
    defaults.push(rxtrain('config/mnist-logreg.yaml'));
    reruns.push(rxtrain('config/mnist-logreg.yaml', [], { cacheDir }));
    for (const spec of specs) peerRuns.get(spec.name)!.push(peer(spec.script, spec.args));
  }
  log('training rates (rxtrain and the peers, without evaluations)');
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
  const warm: LogregFigures['warm'] = {
    wall: median(reruns.map((r) => r.wall)),
    t092: median(reruns.map(timeTo092)),
    rssMB: median(reruns.map((r) => r.rssMB ?? Number.NaN)),
    accuracy: median(reruns.map((r) => r.summary.test?.accuracy ?? Number.NaN)),
    dataMs: median(reruns.map((r) => r.summary.dataMs ?? Number.NaN)),
    firstStage: median(reruns.map(timeToFirstStage)),
  };
  const kernel64 = kernelRate(64);
  const kernel256 = kernelRate(256);
  for (const spec of specs) peers[spec.name] = peerRow(peerRuns.get(spec.name)!, spec.script, spec.sps);
  let paired: HeadToHead | undefined;
  if (hasNumpy) {
    log('rxtrain (a first run, a rerun) and numpy, in turns');
    paired = headToHead(2 * RUNS + 1, cacheDir, sgdArgs(64, 0.1));
  }
  rmSync(cacheDir, { recursive: true, force: true });

  log('rxtrain: notebook experiment, first runs (each with an empty cache) and reruns');
  const notebookRuns = Array.from({ length: RUNS }, () => rxtrain('config/mnist-notebook.yaml'));
  const notebookCache = mkdtempSync(join(tmpdir(), 'rxbench-notebook-'));
  rxtrain('config/mnist-notebook.yaml', [], { cacheDir: notebookCache });
  const notebookReruns = Array.from({ length: RUNS }, () =>
    rxtrain('config/mnist-notebook.yaml', [], { cacheDir: notebookCache }),
  );
  rmSync(notebookCache, { recursive: true, force: true });
  const rxNotebook = {
    wall: median(notebookRuns.map((r) => r.wall)),
    rerunWall: median(notebookReruns.map((r) => r.wall)),
    rssMB: median(notebookRuns.map((r) => r.rssMB ?? Number.NaN)),
    accuracies: Array.from(
      { length: 10 },
      (_, seed) => rxtrain('config/mnist-notebook.yaml', [`seed=${seed}`]).summary.test!.accuracy,
    ),
  };

  let notebookPeer:
    | { wall: number; rssMB: number; extrapolated: boolean; accuracies?: number[]; note: string }
    | string = 'skipped (--no-python)';
  if (hasNumpy) {
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
  } else if (!args['no-python']) notebookPeer = 'skipped: python3-numpy is not installed';

  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out('| | wall (s) | time to 0.92 (s) | samples/s b64 | samples/s b256 | peak RSS (MB) | test accuracy |');
  out('| --- | --- | --- | --- | --- | --- | --- |');
  out(
    `| rxtrain default (\`npm start\`), first run (empty cache) | ${fmt(rx.wall)} | ${fmt(rx.t092)} | ${kilo(rx.sps64)} (kernel ${kilo(kernel64)}) | ${kilo(rx.sps256)} (kernel ${kilo(kernel256)}) | ${fmt(rx.rssMB, 0)} | ${fmt(rx.accuracy, 4)} |`,
  );
  out(
    `| rxtrain default (\`npm start\`), rerun (warm cache) | ${fmt(warm.wall)} | ${fmt(warm.t092)} | | | ${fmt(warm.rssMB, 0)} | ${fmt(warm.accuracy, 4)} |`,
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
      `| ↳ rxtrain first run / ${name} | ${ratio(rx.wall, p.wall)} | ${ratio(rx.t092, p.t092)} | ${ratio(rx.sps64, p.sps64)} | ${ratio(rx.sps256, p.sps256)} | ${ratio(rx.rssMB, p.rssMB)} | ${ratio(rx.accuracy, p.accuracy)} |`,
    );
    out(
      `| ↳ rxtrain rerun / ${name} | ${ratio(warm.wall, p.wall)} | ${ratio(warm.t092, p.t092)} | | | ${ratio(warm.rssMB, p.rssMB)} | ${ratio(warm.accuracy, p.accuracy)} |`,
    );
  }
  if (paired) {
    out();
    out(
      `Head to head, ${paired.pairs} turns (an rxtrain first run, a rerun, then numpy SGD b64 lr 0.1): numpy ${fmt(paired.numpyWall)} s (median), fastest ${fmt(paired.numpyBest)} s`,
    );
    for (const [label, p] of [
      ['first run', paired.cold],
      ['rerun', paired.warm],
    ] as const)
      out(
        `- rxtrain ${label} ${fmt(p.rxWall)} s (median); per turn, wall ${fmt(p.wall)}× and time to 0.92 ${fmt(p.t092)}× of numpy's (medians; the turns' walls ${p.wallRatios.map((x) => x.toFixed(2)).join(', ')}); fastest runs ${fmt(p.rxBest)} / ${fmt(paired.numpyBest)} s = ${ratio(p.rxBest, paired.numpyBest)}`,
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
    `- rxtrain (config/mnist-notebook.yaml): wall ${fmt(rxNotebook.wall)} s on a first run (empty cache), ${fmt(rxNotebook.rerunWall)} s on a rerun, peak RSS ${fmt(rxNotebook.rssMB, 0)} MB, test accuracy ${stats(rxNotebook.accuracies)}`,
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
      `- speed-up, notebook code / rxtrain: ${ratio(notebookPeer.wall, rxNotebook.wall)} first run, ${ratio(notebookPeer.wall, rxNotebook.rerunWall)} rerun${notebookPeer.extrapolated ? ' (extrapolated)' : ''}`,
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
  const rows = Object.entries(peers).filter(
    (e): e is [string, Row & { info: PeerOut }] => typeof e[1] !== 'string',
  );
  const torch = rows.filter(([name]) => name.startsWith('PyTorch'));
  const fastest = torch.sort((a, b) => a[1].wall - b[1].wall)[0];
  const figures: LogregFigures = {
    cold: rx,
    warm,
    numpy: peers['numpy SGD b64 lr 0.1'] as Row | undefined,
    ...(paired ? { paired } : {}),
    torchSameRecipe: peers['PyTorch, same recipe (b64, lr 1 cosine)'] as Row | undefined,
    ...(fastest ? { torchFastest: { ...fastest[1], name: fastest[0] } } : {}),
    ...(typeof notebookPeer !== 'string'
      ? {
          notebookSpeedup: notebookPeer.wall / rxNotebook.wall,
          notebookRerunSpeedup: notebookPeer.wall / rxNotebook.rerunWall,
          notebookExtrapolated: notebookPeer.extrapolated,
        }
      : {}),
  };
  if (typeof figures.numpy === 'string') delete figures.numpy;
  if (typeof figures.torchSameRecipe === 'string') delete figures.torchSameRecipe;
  return { lines, figures };
}
