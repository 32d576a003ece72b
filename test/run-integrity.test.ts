/**
 * One writer per run directory, under concurrency: two `resume`s started together on one killed
 * run (exactly one goes on, the other says who holds it, the log has no step twice); runs started
 * in the same second with default run directories (each gets its own, and its config.yaml is its
 * own); and a resume right after SIGKILL, while the killed process is still an unreaped zombie.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { parse } from 'yaml';
import { BIN, ROOT, runCli, smallMnist, tempDir } from './helpers/index.js';
import { holdAfterTrain, readEvents, readSummary, waitFor } from './helpers/resume.js';

const root = tempDir();
test.after.always(() => rmSync(root, { recursive: true, force: true }));
const cache = join(root, 'cache');
// The default pipeline on a tenth of MNIST: these tests are about who writes a run, not what it learns.
const RUN = [
  'config/mnist-logreg.yaml',
  ...smallMnist(),
  '--set',
  'sgd.steps=400',
  '--set',
  'checkpoint.every=50',
  '--cache',
  cache,
  '--quiet',
];

const HOLD = pathToFileURL(join(import.meta.dirname, 'helpers/holdTraining.js')).href;

/**
 * A run killed with SIGKILL after its checkpoint of step 100: held at its train event of step 200
 * until killed, so it cannot finish first however slowly the test looks.
 */
async function killedRun(dir: string): Promise<void> {
  let pid = 0;
  const release = join(root, `${basename(dir)}-never`);
  const run = runCli(['run', ...RUN, '--run-dir', dir], {
    onSpawn: (p) => (pid = p),
    env: { NODE_OPTIONS: `--import ${HOLD}`, HOLD_AFTER_TRAIN: '2', HOLD_RELEASE: release },
  });
  await waitFor('the run to be held after step 200', () => existsSync(`${release}.held`), 120_000, 20);
  requireCheckpoint100(dir);
  process.kill(pid, 'SIGKILL');
  await run;
}

function requireCheckpoint100(dir: string): void {
  if (!readEvents(dir).some((e) => e.type === 'checkpoint' && e.step >= 100))
    throw new Error(`${dir}: no checkpoint of step 100 before the kill`);
}

test('two resumes started together: exactly one runs, the other exits 2 naming the holder; no seq twice', async (t) => {
  for (let round = 0; round < 3; round++) {
    const dir = join(root, `pair-${round}`);
    await killedRun(dir);
    // Whichever resume proceeds stops dead at its first train event until the other has ended, so
    // the two overlap however late a loaded machine starts the second.
    const release = join(root, `release-${round}`);
    const env = { NODE_OPTIONS: `--import ${HOLD}`, HOLD_AFTER_TRAIN: '1', HOLD_RELEASE: release };
    const pair = [0, 1].map(() => runCli(['resume', dir, '--cache', cache, '--quiet'], { env }));
    await Promise.race(pair);
    writeFileSync(release, 'go');
    const both = await Promise.all(pair);
    const codes = both.map((r) => r.code).sort();
    t.deepEqual(codes, [0, 2], `round ${round}: ${both.map((r) => r.stderr).join(' | ')}`);
    const refused = both.find((r) => r.code === 2)!;
    t.regex(
      refused.stderr,
      // The holder is named once it has written its record; a refusal in the instant between its
      // lock and its record says "another rxtrain process".
      /^rxtrain: E_USAGE: \S+: in use by (rxtrain process \d+ on \S+|another rxtrain process) \(if no rxtrain runs there, delete \S+run\.lock\)\n$/,
    );
    const seqs = readEvents(dir).map((e) => e.seq);
    t.is(new Set(seqs).size, seqs.length, 'no duplicate seq');
    t.is(readEvents(dir).filter((e) => e.type === 'run-finished' && e.status === 'completed').length, 1);
  }
});

test('four runs started in the same second with default run dirs: four dirs, each config its own', async (t) => {
  const runs = join(root, 'runs');
  const results = await Promise.all(
    [1, 2, 3, 4].map((seed) =>
      runCli([
        'run',
        'config/mnist-logreg.yaml',
        ...smallMnist(),
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
  t.deepEqual(
    results.map((r) => r.code),
    [0, 0, 0, 0],
    results.map((r) => r.stderr).join(''),
  );
  const dirs = readdirSync(runs);
  t.is(dirs.length, 4);
  const seeds = dirs.map((d) => {
    const config = parse(readFileSync(join(runs, d, 'config.yaml'), 'utf8')) as { seed: number };
    t.is(readSummary(join(runs, d))!.seed, config.seed, `${d}: summary and config agree`);
    return config.seed;
  });
  t.deepEqual(seeds.sort(), [1, 2, 3, 4]);
});

test('resume right after SIGKILL, while the killed run is an unreaped zombie, is not refused', async (t) => {
  if (!existsSync('/proc/self/stat')) return t.pass('no /proc here: zombies cannot be told apart');
  const dir = join(root, 'zombie');
  // A parent that never reaps its child (Python's Popen reaps only on wait/poll): the killed run
  // stays a zombie, as it would under a container without an init that reaps.
  const hold = holdAfterTrain(2);
  const holder = spawn(
    'python3',
    [
      '-c',
      'import subprocess,sys,time\np=subprocess.Popen(sys.argv[1:])\nprint(p.pid,flush=True)\ntime.sleep(600)',
      process.execPath,
      BIN,
      'run',
      ...RUN,
      '--run-dir',
      dir,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...hold.env } },
  );
  t.teardown(() => holder.kill('SIGKILL'));
  const pid = await new Promise<number>((resolve, reject) => {
    holder.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
    holder.once('error', reject);
  });
  // Held at step 200, past checkpoint 100, so it is certainly still running when killed.
  await waitFor('the run to be held at step 200', hold.held, 120_000, 20);
  process.kill(pid, 'SIGKILL');
  const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
  await waitFor('the zombie', () => state() === 'Z');
  const resumed = await runCli(['resume', dir, '--cache', cache, '--quiet']);
  t.is(resumed.code, 0, resumed.stderr);
  t.is(state(), 'Z', 'the killed run was still a zombie while resume ran');
  t.is(readSummary(dir)!.status, 'completed');
});
