/**
 * `npm run bench:integrity [pairs] [quadruples]`: one writer per run directory, measured at scale.
 *
 *   - `pairs` times (default 50): a run is killed with SIGKILL after its checkpoint of step 100,
 *     then two `rxtrain resume` of it are started in the same tick. Counts the rounds in which
 *     exactly one proceeded (exit 0) and the other was refused (exit 2, one line), and the rounds
 *     whose event log holds a `seq` twice or more than one completed `run-finished`.
 *   - `quadruples` times (default 20): four `rxtrain run` with default run directories started in
 *     the same tick. Counts the rounds in which all four completed into four directories, each
 *     `config.yaml` agreeing with its `summary.json`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/rxtrain.js');
const pairs = Number(process.argv[2] ?? 50);
const quadruples = Number(process.argv[3] ?? 20);
const root = mkdtempSync(join(tmpdir(), 'rxtrain-integrity-'));
const cache = join(root, 'cache');

function cli(
  args: string[],
  onSpawn?: (pid: number) => void,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    if (child.pid) onSpawn?.(child.pid);
    child.on('close', (code) => done({ code, stderr }));
  });
}

function events(dir: string): { type: string; seq: number; step?: number; status?: string }[] {
  const file = join(dir, 'events.ndjson');
  if (!existsSync(file)) return [];
  // Only complete lines: the run may be writing the last one as it is read.
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines
    .slice(0, -1)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

const RUN = [
  'config/mnist-logreg.yaml',
  '--set',
  'sgd.steps=300',
  '--set',
  'checkpoint.every=50',
  '--cache',
  cache,
  '--quiet',
];
let onePair = 0;
let duplicates = 0;
for (let i = 0; i < pairs; i++) {
  const dir = join(root, `pair-${i}`);
  let pid = 0;
  const run = cli(['run', ...RUN, '--run-dir', dir], (p) => (pid = p));
  await until(() => events(dir).some((e) => e.type === 'checkpoint' && (e.step ?? 0) >= 100));
  process.kill(pid, 'SIGKILL');
  await run;
  const both = await Promise.all([0, 1].map(() => cli(['resume', dir, '--cache', cache, '--quiet'])));
  const codes = both.map((r) => r.code).sort();
  const refused = both.find((r) => r.code === 2);
  if (codes[0] === 0 && codes[1] === 2 && refused && refused.stderr.split('\n').filter(Boolean).length === 1)
    onePair++;
  const log = events(dir);
  const seqs = log.map((e) => e.seq);
  const finished = log.filter((e) => e.type === 'run-finished' && e.status === 'completed').length;
  if (new Set(seqs).size !== seqs.length || finished !== 1) duplicates++;
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `resume pairs: ${onePair}/${pairs} with exactly one proceeding; ${duplicates} logs with a duplicate seq or run end`,
);

let fourOk = 0;
for (let i = 0; i < quadruples; i++) {
  const runs = join(root, `runs-${i}`);
  const results = await Promise.all(
    [1, 2, 3, 4].map((seed) =>
      cli([
        'run',
        'config/mnist-logreg.yaml',
        '--set',
        'sgd.steps=20',
        '--set',
        `seed=${seed}`,
        '--runs',
        runs,
        '--cache',
        cache,
        '--quiet',
      ]),
    ),
  );
  const dirs = existsSync(runs) ? readdirSync(runs) : [];
  const agree = dirs.every((d) => {
    const config = parse(readFileSync(join(runs, d, 'config.yaml'), 'utf8')) as { seed: number };
    const summary = JSON.parse(readFileSync(join(runs, d, 'summary.json'), 'utf8')) as {
      seed: number;
      status: string;
    };
    return summary.seed === config.seed && summary.status === 'completed';
  });
  if (results.every((r) => r.code === 0) && dirs.length === 4 && agree) fourOk++;
  rmSync(runs, { recursive: true, force: true });
}
console.log(
  `run quadruples: ${fourOk}/${quadruples} with four completed runs in four dirs, each config.yaml matching its summary.json`,
);
rmSync(root, { recursive: true, force: true });
