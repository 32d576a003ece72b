/**
 * Sweeps end to end, through the real `rxtrain sweep` with trials as processes: a sweep whose whole
 * process group is SIGKILLed mid-way and then resumed runs no trial twice and reproduces every
 * trial's weights; a failed trial does not stop the others; the sweep's report opens in Chromium.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { type RunSummary, runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { isAlive } from '../src/util/process.js';
import { browserTitle, hasChromium, launchChromium, pageOfOnly } from './helpers/browser.js';
import { BIN, ROOT, runCli, tempDir } from './helpers/index.js';
import { slowCheckpointWrites, waitFor } from './helpers/resume.js';
import {
  readState,
  sweepEvents,
  tinyBase,
  tinyData,
  trialEvents,
  trialIds,
  writeSweep,
} from './helpers/sweep.js';

const root = tempDir('rxtrain-sweep-');
const cache = join(root, 'cache');
const data = tinyData(join(root, 'data'));

/** A 2 × 2 grid of 600-step trials. */
const grid = async () =>
  writeSweep(root, 'grid', {
    base: tinyBase(await data, 600),
    parameters: { 'sgd.lr': { values: [0.05, 0.2] }, 'sgd.momentum': { values: [0, 0.5] } },
  });

const sweep = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(['sweep', ...args, '--cache', cache, '--parallel', '2', '--quiet'], { env, timeoutMs: 120_000 });

const summaryOf = (dir: string, id: string) =>
  JSON.parse(readFileSync(join(dir, 'trials', id, 'summary.json'), 'utf8')) as RunSummary;

/** A trial's config run in-process, uninterrupted and outside any sweep: its weights' sha256. */
async function plainRun(sweepDir: string, overrides: string[]): Promise<string> {
  const base = join(sweepDir, 'base.yaml');
  const config = await loadConfig(base, { stages: builtinStages, overrides });
  const summary = await runExperiment({ config, runDir: join(tempDir(), 'run'), cacheDir: cache });
  return summary.weightsSha256!;
}

/** The killed and resumed sweep's directory, once its test has run (the report test reads it). */
let killedSweep: string | undefined;

test.serial(
  'SIGKILL of the sweep and its trials, then sweep resume: no trial runs twice, interrupted ones continue from their checkpoints, every weightsSha256 as a plain run of its config',
  async (t) => {
    const dir = join(root, 'killed');
    // Checkpoint writes pause 150 ms half-written: trials are long enough to be caught mid-run.
    const child = spawn(
      process.execPath,
      [BIN, 'sweep', await grid(), '--sweep-dir', dir, '--cache', cache, '--parallel', '2', '--quiet'],
      { detached: true, stdio: 'ignore', env: { ...process.env, ...slowCheckpointWrites(150) } },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const hasCheckpoint = (id: string) =>
      existsSync(join(dir, 'trials', id, 'checkpoints')) &&
      readdirSync(join(dir, 'trials', id, 'checkpoints')).some((f) => f.endsWith('.rxckpt'));
    await waitFor('a trial done and another checkpointed', () => {
      const s = readState(dir);
      return (
        !!s &&
        s.trials.some((x) => x.status === 'done') &&
        s.trials.some((x) => x.status === 'running' && hasCheckpoint(x.id))
      );
    });
    process.kill(-child.pid!, 'SIGKILL'); // the sweep's whole process group: the sweep and its trials
    await exited;

    const atKill = readState(dir)!;
    const doneBefore = atKill.trials.filter((x) => x.status === 'done').map((x) => x.id);
    const midRun = atKill.trials
      .filter(
        (x) =>
          x.status === 'running' &&
          hasCheckpoint(x.id) &&
          !existsSync(join(dir, 'trials', x.id, 'summary.json')),
      )
      .map((x) => x.id);
    t.true(doneBefore.length >= 1);
    t.true(midRun.length >= 1, 'a trial was killed mid-run, after a checkpoint');

    const resumed = await runCli(['sweep', 'resume', dir, '--cache', cache, '--parallel', '2', '--quiet']);
    t.is(resumed.code, 0, resumed.stderr);
    t.regex(resumed.stdout, /^completed sweep grid: 4 trials \(4 done\)/);

    const state = readState(dir)!;
    t.is(state.trials.length, 4, 'the same planned total');
    t.deepEqual(trialIds(dir), state.trials.map((x) => x.id).sort(), 'four run directories, one per trial');
    const secondSession = sweepEvents(dir).slice(
      sweepEvents(dir).findLastIndex((e) => e.type === 'sweep-started'),
    );
    const startedAgain = secondSession.flatMap((e) => (e.type === 'trial-started' ? [e.trial] : []));
    for (const id of doneBefore) t.false(startedAgain.includes(id), `${id} was done and did not run again`);
    for (const trial of state.trials) {
      t.is(trial.status, 'done');
      const finished = trialEvents(dir, trial.id).filter((e) => e.type === 'run-finished');
      t.deepEqual(
        finished.map((e) => e.type === 'run-finished' && e.status),
        ['completed'],
        `${trial.id}: one run-finished in its history`,
      );
      // The trial's id is the start of the config hash its own run recorded.
      const record = JSON.parse(readFileSync(join(dir, 'trials', trial.id, 'run.json'), 'utf8'));
      t.true(record.configHash.startsWith(trial.id));
      t.is(summaryOf(dir, trial.id).steps, 600);
      t.is(
        summaryOf(dir, trial.id).weightsSha256,
        await plainRun(dir, trial.overrides),
        `${trial.id}: weights`,
      );
    }
    for (const id of midRun)
      t.true((summaryOf(dir, id).resumedFrom ?? 0) > 0, `${id} resumed from its checkpoint`);
    const summary = JSON.parse(readFileSync(join(dir, 'sweep-summary.json'), 'utf8'));
    t.deepEqual(summary.counts, { done: 4 });
    t.true(summary.stepsSpent >= 2400, 'work redone after the kill is counted');
    killedSweep = dir;
    t.log(`killed with ${doneBefore.length} done, ${midRun.length} mid-run after a checkpoint`);
  },
);

test('a failed trial is recorded with its error line and the sweep goes on; exit 1', async (t) => {
  const file = writeSweep(root, 'failing', {
    base: tinyBase(await data, 100),
    // 1e300 makes the loss overflow at once; "fast" is not a number, so that trial never starts.
    parameters: { 'sgd.lr': { values: [0.1, 1e300, 'fast'] } },
  });
  const dir = join(root, 'failing');
  const result = await sweep([file, '--sweep-dir', dir]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stdout, /^failed sweep failing: 3 trials \(1 done, 2 failed\)/);
  const state = readState(dir)!;
  const byLr = new Map(state.trials.map((x) => [x.params['sgd.lr'], x]));
  t.is(byLr.get(0.1)!.status, 'done');
  t.is(byLr.get(1e300)!.status, 'failed');
  t.regex(byLr.get(1e300)!.error!, /^E_DATA: sgd: the loss became (NaN|Infinity) at step \d+; lower sgd.lr$/);
  t.is(byLr.get('fast')!.status, 'failed');
  t.is(byLr.get('fast')!.attempts, 0, 'a config that does not validate is not run');
  t.regex(
    byLr.get('fast')!.error!,
    /^E_CONFIG: sgd\.lr="fast": stages\[5\]\.lr: expected number, got "fast"$/,
  );
  const finished = sweepEvents(dir).filter((e) => e.type === 'trial-finished');
  t.is(finished.length, 3);
  t.is(trialIds(dir).length, 2, 'run directories for the two trials that ran');
});

test('trials run in long-lived hosts, one per --parallel slot: a failed trial retires its host, the weights are a plain run’s, no host outlives the sweep', async (t) => {
  const file = writeSweep(root, 'hosts', {
    base: tinyBase(await data, 200),
    parameters: { 'sgd.lr': { values: [0.05, 0.1, 1e300, 0.2, 0.3, 0.4] } },
  });
  const dir = join(root, 'hosts');
  const result = await sweep([file, '--sweep-dir', dir]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stdout, /^failed sweep hosts: 6 trials \(5 done, 1 failed\)/);
  const events = sweepEvents(dir);
  const pids = events.flatMap((e) => (e.type === 'trial-started' ? [e.pid as number] : []));
  t.is(pids.length, 6);
  // Two slots, and one host retired after the failure: three processes ran the six trials at most.
  const hosts = [...new Set(pids)];
  t.true(hosts.length >= 2 && hosts.length <= 3, `trial hosts: ${hosts.join(', ')}`);
  const state = readState(dir)!;
  const failed = state.trials.find((x) => x.status === 'failed')!;
  const failedAt = events.findIndex((e) => e.type === 'trial-started' && e.trial === failed.id);
  const failedPid = pids[events.slice(0, failedAt + 1).filter((e) => e.type === 'trial-started').length - 1];
  const finishedAt = events.findIndex((e) => e.type === 'trial-finished' && e.trial === failed.id);
  const startedAfter = events
    .slice(finishedAt + 1)
    .flatMap((e) => (e.type === 'trial-started' ? [e.pid as number] : []));
  t.false(startedAfter.includes(failedPid!), 'no trial ran in the host of the failed one');
  for (const trial of state.trials.filter((x) => x.status === 'done'))
    t.is(
      summaryOf(dir, trial.id).weightsSha256,
      await plainRun(dir, trial.overrides),
      `${trial.id}: weights`,
    );
  for (const pid of hosts) t.false(isAlive(pid), `host ${pid} exited with the sweep`);
});

const SCREENSHOT = join(ROOT, 'dist/test-output/sweep-report-browser.png');
const reportTitle =
  'the report of a real sweep in headless Chromium: no console errors, no network requests, the table and every plot drawn';

(hasChromium ? test.serial : test.skip)(browserTitle(reportTitle), async (t) => {
  t.timeout(180_000);
  const dir = killedSweep!;
  t.truthy(dir, 'the kill-and-resume test ran first');
  const out = join(root, 'sweep-report.html');
  const made = await runCli(['report', dir, '--out', out]);
  t.is(made.code, 0, made.stderr);
  t.regex(made.stdout, /^wrote .*sweep-report\.html \(a sweep of 4 trials/);
  const url = pathToFileURL(out).href;
  const state = readState(dir)!;
  const ranked = [...state.trials]
    .sort((a, b) => b.metric! - a.metric! || a.index - b.index)
    .map((x) => x.id);

  const context = await launchChromium();
  try {
    const { page, requests, problems } = await pageOfOnly(context, url);
    await page.goto(url, { waitUntil: 'load' });
    t.deepEqual(problems, []);
    t.deepEqual(
      requests.filter((r) => !r.startsWith('data:')),
      [url],
    );

    // The table: every trial, best first, with the two parameters that vary.
    const rows = await page
      .locator('table.trials tr[data-trial]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-trial')));
    t.deepEqual(rows, ranked);
    const heads = await page.locator('table.trials th').allTextContents();
    t.deepEqual(heads.slice(3, 5), ['sgd.lr', 'sgd.momentum']);

    const charts = await page
      .locator('svg[data-chart]')
      .evaluateAll((svgs) => svgs.map((s) => s.getAttribute('data-chart')));
    t.deepEqual(charts, [
      'param-0',
      'param-1',
      'top-metric',
      'top-loss',
      'confusion-0-val',
      'confusion-0-test',
    ]);
    for (const id of ['param-0', 'param-1'])
      t.is(await page.locator(`svg[data-chart="${id}"] circle.point`).count(), 4, id);
    // The best four's val accuracy at steps 100, 200, …, 600 (not the untrained start): six points each.
    t.is(await page.locator('svg[data-chart="top-metric"] circle.point').count(), 4 * 6);
    const box = await page.locator('svg[data-chart="param-0"] circle.point').first().boundingBox();
    t.true(box !== null && box.width > 0, 'points are drawn');
    t.is(await page.locator('.templates img').count(), 10, 'the best trial’s weights');

    mkdirSync(join(ROOT, 'dist/test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.true(statSync(SCREENSHOT).size > 30_000);
    t.log(`screenshot: ${SCREENSHOT}`);
  } finally {
    await context.close();
  }
});
