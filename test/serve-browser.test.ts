/**
 * `rxtrain serve` and the comparison report in a real browser: Debian's headless Chromium, driven
 * by playwright-core. The live page watches a real run train (held half-way by a preload, so the
 * first look is mid-run however fast the machine is), then follows a server restart, a new run
 * and a deleted one. A three-run report and a 50-class, 30,000-step report are checked for what a
 * reader needs to see. Every wait is a bounded poll on the page; screenshots are left in
 * dist/test-output/. Skips (with the reason in its title) where /usr/bin/chromium is missing.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import type { Page } from 'playwright-core';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents } from '../src/pipeline/events.js';
import { runExperiment } from '../src/pipeline/run.js';
import { buildReport } from '../src/report/report.js';
import { keyOf } from '../src/serve/runIndex.js';
import { startServer } from '../src/serve/server.js';
import { builtinStages } from '../src/stages/index.js';
import { browserTitle, hasChromium, launchChromium } from './helpers/browser.js';
import { ROOT, runCli, tempDir } from './helpers/index.js';

const OUT = join(ROOT, 'dist/test-output');
const browserTest = hasChromium ? test.serial : test.skip;

/** Poll the page until `probe` gives a value (bounded: a stuck page fails in seconds, not at ava's timeout). */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  limitMs = 60_000,
): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lossPoints = (page: Page) => page.locator('svg[data-chart="loss"] circle.point').count();
const statusOf = (page: Page, key: string) =>
  page
    .locator(`#runs tr[data-run="${key}"] td[data-status]`)
    .textContent({ timeout: 1000 })
    .catch(() => null);

/** Train and evaluation events in a log: each is one point on the loss chart. */
function pointsInLog(runDir: string): number {
  const events = parseEvents(readFileSync(join(runDir, 'events.ndjson'), 'utf8'));
  return events.filter((e) => e.type === 'train' || e.type === 'eval').length;
}

browserTest(
  browserTitle(
    'serve in Chromium while a real run trains: the loss chart grows between two looks, the status turns completed, no console errors, no request outside the server; then a restart, a new run and a deleted one',
  ),
  async (t) => {
    t.timeout(240_000);
    const root = join(tempDir(), 'runs');
    mkdirSync(root);
    const cache = tempDir();
    let server = await startServer({ dirs: [root], port: 0, cacheDir: cache, rescanMs: 500, updateMs: 100 });
    const origin = server.url.replace(/\/$/, '');
    const context = await launchChromium();
    t.teardown(async () => {
      await context.close();
      await server.close();
    });
    const outside: string[] = [];
    const problems: string[] = [];
    context.on('request', (r) => {
      if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith('data:')) outside.push(r.url());
    });
    await context.route(
      (u) => !u.href.startsWith(`${origin}/`),
      (route) => route.abort(),
    );
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(server.url, { waitUntil: 'load' });
    await until(
      'the page to connect',
      async () => (await page.locator('#live-status').getAttribute('data-state')) === 'live',
    );

    // A real run, held after its 15th train event until the test says go.
    const runDir = join(root, 'live');
    const release = join(tempDir(), 'release');
    const preload = pathToFileURL(join(import.meta.dirname, 'helpers/holdTraining.js')).href;
    const sets = ['sgd.steps=400', 'sgd.logEvery=10', 'evaluate.every=100'];
    const training = runCli(
      [
        'run',
        'config/mnist-logreg.yaml',
        '--run-dir',
        runDir,
        '--cache',
        cache,
        '--quiet',
        ...sets.flatMap((s) => ['--set', s]),
      ],
      { env: { NODE_OPTIONS: `--import ${preload}`, HOLD_AFTER_TRAIN: '15', HOLD_RELEASE: release } },
    );
    const key = keyOf(runDir);
    await until('the run to be held mid-way', async () => existsSync(`${release}.held`), 120_000);
    const held = pointsInLog(runDir);
    const first = await until('the page to show every point logged so far', async () => {
      const n = await lossPoints(page);
      return n === held ? n : undefined;
    });
    t.is(await statusOf(page, key), 'running', 'first look: running');
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'serve-live-midrun.png'), fullPage: false });

    writeFileSync(release, 'go');
    const result = await training;
    t.is(result.code, 0, result.stderr);
    const final = pointsInLog(runDir);
    await until('the status to turn completed', async () => (await statusOf(page, key)) === 'completed');
    const second = await until('every point of the finished run', async () => {
      const n = await lossPoints(page);
      return n === final ? n : undefined;
    });
    t.true(second > first, `the loss chart grew between two looks: ${first} → ${second} points`);
    t.log(`loss chart points: ${first} mid-run (held after 15 train events), ${second} at the end`);
    await until(
      'the final weights drawn',
      async () => (await page.locator('figure.template').count()) === 10,
    );
    await page.screenshot({ path: join(OUT, 'serve-live-completed.png'), fullPage: true });
    t.deepEqual(problems, [], 'no console errors or warnings');
    t.deepEqual(outside, [], 'no request outside the server');

    // The server goes away and comes back on the same port with a second run: the page reconnects.
    const port = server.port;
    await server.close();
    await until(
      'the page to notice',
      async () => (await page.locator('#live-status').getAttribute('data-state')) === 'reconnecting',
    );
    const copy = join(root, 'copy');
    mkdirSync(copy);
    for (const f of ['events.ndjson', 'config.yaml']) cpSync(join(runDir, f), join(copy, f));
    server = await startServer({ dirs: [root], port, cacheDir: cache, rescanMs: 500, updateMs: 100 });
    await until(
      'the page to reconnect',
      async () => (await page.locator('#live-status').getAttribute('data-state')) === 'live',
    );
    await until('the new run to appear', async () => (await page.locator('section.run').count()) === 2);
    rmSync(copy, { recursive: true, force: true });
    await until('the deleted run to go', async () => (await page.locator('section.run').count()) === 1);
    // While the server was down the browser's attempts to reconnect were refused; nothing else.
    t.deepEqual(
      problems.filter((p) => !/ERR_CONNECTION_REFUSED|\/events/.test(p)),
      [],
    );
    t.deepEqual(outside, []);
  },
);

browserTest(
  browserTitle('a three-run comparison report and a 50-class, 30,000-step report, as a reader sees them'),
  async (t) => {
    t.timeout(240_000);
    const parent = tempDir();
    const cache = tempDir();
    const base = ['sgd.steps=300', 'sgd.logEvery=20', 'evaluate.every=50'];
    const runs: string[] = [];
    // In this process: three short runs cost less than three CLI start-ups.
    for (const [name, extra] of [
      ['a', ['sgd.lr=1']],
      ['b', ['sgd.lr=0.1']],
      ['c', ['sgd.lr=0.1', 'sgd.batchSize=256']],
    ] as const) {
      const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
        stages: builtinStages,
        overrides: [...base, ...extra],
      });
      const summary = await runExperiment({ config, runDir: join(parent, name), cacheDir: cache });
      t.is(summary.status, 'completed');
      runs.push(join(parent, name));
    }
    const compared = await buildReport(runs, { cacheDir: cache });
    t.deepEqual(
      compared.runs.map((r) => r.label),
      ['batchSize=64 lr=1', 'batchSize=64 lr=0.1', 'batchSize=256 lr=0.1'],
    );
    const legible = await buildReport([syntheticRun(join(parent, 'fifty'))], { cacheDir: cache });

    const context = await launchChromium();
    t.teardown(() => context.close());
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    const open = async (html: string, name: string) => {
      const file = join(tempDir(), `${name}.html`);
      writeFileSync(file, html);
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    };

    await open(compared.html, 'compare');
    t.deepEqual(
      await page
        .locator('table.diff tr[data-key]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key'))),
      ['sgd.batchSize', 'sgd.lr'],
      'a row per setting that differs',
    );
    t.is(await page.locator('details.config[open]').count(), 0, 'full configs folded away');
    t.is(await page.locator('details.config').count(), 3);
    t.is(await page.locator('svg[data-chart="accuracy"] g.mark[data-mark="best"]').count(), 3);
    await expectLabelsInside(t, page);
    const height = await page.evaluate('document.documentElement.scrollHeight');
    t.log(`three-run report: ${height} px tall`);
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'report-compare.png'), fullPage: true });
    // The part a reader compares runs by, at full size: the runs, what differs, the curves.
    const curvesEnd = await page.locator('#curves').evaluate((e) => e.getBoundingClientRect().bottom);
    await page.screenshot({
      path: join(OUT, 'report-compare-top.png'),
      clip: { x: 0, y: 0, width: 1280, height: Math.ceil(curvesEnd) + 8 },
      fullPage: true,
    });
    t.true(statSync(join(OUT, 'report-compare.png')).size > 50_000);

    await open(legible.html, 'fifty');
    await expectLabelsInside(t, page);
    const cells = await page
      .locator('svg.heatmap g.cell rect')
      .evaluateAll((rects) => rects.slice(0, 3).map((r) => r.getBoundingClientRect().width));
    t.true(
      cells.every((w) => w >= 16),
      `50-class cells are ${cells[0]} px wide on screen`,
    );
    const labels = await page
      .locator('svg.heatmap text.class-label[text-anchor="middle"]')
      .evaluateAll((ts) => ts.map((e) => e.getBoundingClientRect()));
    t.is(labels.length, 50);
    t.true(
      labels.every((b, i) => i === 0 || b.left >= labels[i - 1]!.right),
      'column labels do not overlap',
    );
    t.true(
      (await page.locator('svg[data-chart="accuracy"] g.series.sparse').count()) > 0,
      'two evaluations: markers',
    );
    t.is(
      await page.locator('svg[data-chart="loss"] g.mark[data-mark="stop"]').count(),
      1,
      'early stop marked',
    );
    t.log(`50-class cells: ${cells[0]} px`);
    await page.screenshot({ path: join(OUT, 'report-fifty-classes.png'), fullPage: true });
    const matrix = await page.locator('svg.heatmap').boundingBox();
    await page.screenshot({
      path: join(OUT, 'report-fifty-classes-matrix.png'),
      clip: matrix!,
      fullPage: true,
    });
    t.deepEqual(problems, []);
  },
);

/** Every tick label of every line chart lies inside its chart (no clipped "30,000"). */
async function expectLabelsInside(t: import('ava').ExecutionContext, page: Page): Promise<void> {
  const outside = await page.locator('svg.chart').evaluateAll((svgs) =>
    svgs.flatMap((svg) => {
      const box = svg.getBoundingClientRect();
      return [...svg.querySelectorAll('.grid text')]
        .map((text) => ({ text: text.textContent, b: text.getBoundingClientRect() }))
        .filter(
          ({ b }) => b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.bottom > box.bottom + 0.5,
        )
        .map(({ text }) => text);
    }),
  );
  t.deepEqual(outside, [], 'tick labels inside their charts');
}

/** A hand-made run: 30,000 steps, 50 classes, two evaluations, the second one stopping early. */
function syntheticRun(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const C = 50;
  let seq = 0;
  const line = (e: Record<string, unknown>) =>
    `${JSON.stringify({ ...e, time: '2026-01-01T00:00:00.000Z', elapsedMs: seq, seq: seq++ })}\n`;
  let text = line({ type: 'run-started', run: 'fifty', config: 'fifty-classes', runDir: dir, version: '0' });
  const confusion = (correct: number) =>
    Array.from({ length: C * C }, (_, i) => (i % (C + 1) === 0 ? correct : i % 13 === 0 ? 7 : 0));
  const evalAt = (step: number, accuracy: number, loss: number, stop?: string) =>
    line({
      type: 'eval',
      split: 'test',
      step,
      epoch: step / 1000,
      examples: 10_000,
      accuracy,
      loss,
      classes: C,
      confusion: confusion(step ? 180 : 20),
      best: { metric: 'test.accuracy', step, value: accuracy },
      ...(stop ? { earlyStop: stop } : {}),
    });
  text += evalAt(0, 0.02, 3.9);
  for (let step = 1000; step <= 30_000; step += 1000)
    text += line({
      type: 'train',
      step,
      epoch: step / 1000,
      samples: step * 64,
      loss: 0.5 + 1 / Math.sqrt(step / 1000),
      accuracy: 0.85 + 0.003 * Math.log(step),
      lr: 0.1,
      samplesPerSec: 1,
    });
  text += evalAt(30_000, 0.9, 0.6, 'test.accuracy has not improved for 3 evaluations');
  writeFileSync(join(dir, 'events.ndjson'), text);
  return dir;
}
