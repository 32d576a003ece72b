/**
 * The report in a real browser: Debian's headless Chromium, driven by playwright-core, opens the
 * report of a real default run. Skips (with the reason in its title) where /usr/bin/chromium is
 * missing; .ci/run installs it so CI always runs it.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents, type RxtrainEvent } from '../src/pipeline/events.js';
import { runExperiment } from '../src/pipeline/run.js';
import { buildReport } from '../src/report/report.js';
import { builtinStages } from '../src/stages/index.js';
import { browserTitle, hasChromium, launchChromium, pageOfOnly } from './helpers/browser.js';
import { ROOT, tempDir } from './helpers/index.js';

/** Where the screenshot is left for people to look at (dist/ is not committed). */
const SCREENSHOT = join(ROOT, 'dist/test-output/report-browser.png');

const title =
  'the report of a real default run in headless Chromium: no console errors, no network requests, every chart has its points';
const browserTest = hasChromium ? test : test.skip;

browserTest(browserTitle(title), async (t) => {
  t.timeout(180_000);
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), { stages: builtinStages });
  const runDir = join(tempDir(), 'default-run');
  const summary = await runExperiment({ config, runDir, cacheDir: tempDir() });
  t.is(summary.status, 'completed');
  const events = parseEvents(readFileSync(join(runDir, 'events.ndjson'), 'utf8'));
  const trains = events.filter((e) => e.type === 'train').length;
  const evals = events.filter((e): e is Extract<RxtrainEvent, { type: 'eval' }> => e.type === 'eval');
  const last = evals.at(-1)!;

  const { html } = await buildReport([runDir], { cacheDir: tempDir() });
  const file = join(tempDir(), 'report.html');
  writeFileSync(file, html);
  const url = pathToFileURL(file).href;

  const context = await launchChromium();
  try {
    const { page, requests, problems } = await pageOfOnly(context, url);
    await page.goto(url, { waitUntil: 'load' });

    t.deepEqual(problems, [], 'no console errors or warnings');
    t.deepEqual(
      requests.filter((r) => !r.startsWith('data:')),
      [url],
      'the only request is the page itself',
    );

    const count = (selector: string) => page.locator(selector).count();
    const charts = await page
      .locator('svg[data-chart]')
      .evaluateAll((svgs) => svgs.map((s) => s.getAttribute('data-chart')));
    t.deepEqual(charts, ['loss', 'accuracy', 'confusion-0-test']);
    // Loss: training loss at every train event, test loss at every evaluation; accuracy alike.
    t.is(await count('svg[data-chart="loss"] circle.point'), trains + evals.length);
    t.is(await count('svg[data-chart="accuracy"] circle.point'), trains + evals.length);
    t.is(trains, 47);
    t.is(evals.length, 11);
    const box = await page.locator('svg[data-chart="loss"] circle.point').last().boundingBox();
    t.true(box !== null && box.width > 0, 'points are drawn');

    const cells = await page
      .locator('svg[data-chart="confusion-0-test"] g.cell')
      .evaluateAll((gs) => gs.map((g) => Number(g.getAttribute('data-count'))));
    t.deepEqual(cells, last.confusion);
    t.is(
      cells.reduce((a, b) => a + b, 0),
      10000,
    );
    t.is(await count('table.per-class tr[data-class]'), 10);

    // Every image decoded: ten 28×28 templates, one picture per misclassified test digit.
    const images = await page.locator('img').evaluateAll((imgs) =>
      imgs.map((i) => ({
        cls: i.closest('figure')?.className ?? '',
        w: (i as unknown as { naturalWidth: number }).naturalWidth,
      })),
    );
    t.true(
      images.every((i) => i.w > 0),
      'every image decodes',
    );
    t.deepEqual(
      images.filter((i) => i.cls === 'template').map((i) => i.w),
      Array(10).fill(28),
    );
    t.is(images.filter((i) => i.cls === 'digit').length, last.misclassified!.length);
    t.is(last.misclassified!.length, 32);
    t.regex((await page.locator('pre.config').textContent()) ?? '', /^name: mnist-logreg\n/);

    mkdirSync(join(ROOT, 'dist/test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.true(statSync(SCREENSHOT).size > 50_000, 'a screenshot with something on it');
    t.log(`screenshot: ${SCREENSHOT}`);
  } finally {
    await context.close();
  }
});
