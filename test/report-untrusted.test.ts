/**
 * `rxtrain report` only reads a run directory: a module its config.yaml names is never imported,
 * and a remote source is read from the download cache or not at all — never fetched. Planted
 * events are validated, escaped, and — in Chromium — can neither navigate, run, nor request.
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { runExperiment } from '../src/pipeline/run.js';
import { escapeHtml } from '../src/report/escape.js';
import { buildReport } from '../src/report/report.js';
import { builtinStages } from '../src/stages/index.js';
import { browserTitle, hasChromium, launchChromium } from './helpers/browser.js';
import { ROOT, tempDir } from './helpers/index.js';

/** A short run in a temporary directory, removed when the test ends. */
async function trainedRun(t: ExecutionContext): Promise<{ root: string; runDir: string }> {
  const root = tempDir();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const runDir = join(root, 'run');
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
    stages: builtinStages,
    overrides: ['sgd.steps=30', 'evaluate.every=0'],
  });
  await runExperiment({ config, runDir, cacheDir: join(root, 'cache') });
  return { root, runDir };
}

test('a planted module is not run and the network is not touched; the report says why pictures are missing', async (t) => {
  const { root, runDir } = await trainedRun(t);

  // A server that counts requests, and a config.yaml rewritten to fetch from it and to load a
  // module that would leave a mark.
  let requests = 0;
  const server = createServer((_, res) => {
    requests++;
    res.end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const mark = join(root, 'planted-module-ran');
  writeFileSync(
    join(root, 'planted.js'),
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(mark)}, 'x');\nexport {};\n`,
  );
  const yaml = readFileSync(join(runDir, 'config.yaml'), 'utf8')
    .replace(/^modules: \[\]$/m, `modules: [${JSON.stringify(join(root, 'planted.js'))}]`)
    .replace(/url: embedded:mnist/, `url: http://127.0.0.1:${port}/MNIST.tar.gz`);
  t.regex(yaml, /modules: \[".*planted\.js"\]/);
  t.regex(yaml, /url: http:\/\/127\.0\.0\.1:\d+\/MNIST\.tar\.gz/);
  writeFileSync(join(runDir, 'config.yaml'), yaml);

  const warnings: string[] = [];
  const report = await buildReport([runDir], {
    cacheDir: join(root, 'other-cache'),
    onWarning: (w) => warnings.push(w),
  });
  t.false(existsSync(mark), 'the module in config.yaml was not imported');
  t.is(requests, 0, 'no request reached the network');
  t.true(report.html.length > 0);
  t.regex(warnings.join('\n'), /not in the download cache .* this command does not use the network/);
});

test('planted events: markup, absurd sizes, a null line and a string epoch are left out, said so, and never drawn', async (t) => {
  const { root, runDir } = await trainedRun(t);
  const meta = '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/">';
  const base = { time: new Date().toISOString(), elapsedMs: 1, seq: 999 };
  const planted = [
    'null',
    JSON.stringify({
      ...base,
      type: 'train',
      step: 40,
      epoch: 'soon',
      samples: 1,
      loss: 1,
      accuracy: 0.5,
      lr: 1,
      samplesPerSec: 1,
    }),
    JSON.stringify({
      ...base,
      type: 'eval',
      split: 'test',
      step: 40,
      epoch: 0.1,
      examples: 1,
      accuracy: 0.5,
      loss: 1,
      classes: 2,
      confusion: [1, 0, 0, 1],
      misclassified: [{ index: 0, label: meta, predicted: 1 }],
    }),
    JSON.stringify({
      ...base,
      type: 'eval',
      split: 'test',
      step: 41,
      epoch: 0.1,
      examples: 1,
      accuracy: 0.5,
      loss: 1,
      classes: 200_000,
    }),
  ];
  appendFileSync(join(runDir, 'events.ndjson'), `${planted.join('\n')}\n`);
  const started = performance.now();
  const report = await buildReport([runDir], { cacheDir: join(root, 'cache') });
  t.true(performance.now() - started < 60_000, 'no classes² loop over 200,000 classes');
  t.false(report.html.includes('http-equiv="refresh"'), 'no planted markup in the page');
  t.regex(report.html, /3 events in events\.ndjson did not fit the event format and were left out/);
});

const plantedTitle =
  'planted markup in a valid event, opened in Chromium: no navigation, no script, no request, shown as text';
const browserTest = hasChromium ? test : test.skip;

browserTest(browserTitle(plantedTitle), async (t) => {
  t.timeout(180_000);
  const { root, runDir } = await trainedRun(t);
  // Markup where the event format allows any string (a split's name), in an event that is
  // otherwise valid, so the report draws it: every way a page could be taken over at once.
  const split = [
    '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/meta">',
    '<base href="http://127.0.0.1:9/base/">',
    '<script>window.__planted = "script"</script>',
    '<img src="http://127.0.0.1:9/img" onerror="window.__planted = \'onerror\'">',
    '<form action="http://127.0.0.1:9/form"><button id="planted">go</button></form>',
  ].join('');
  const eval_ = {
    time: new Date().toISOString(),
    elapsedMs: 1,
    seq: 999,
    type: 'eval',
    split,
    step: 30,
    epoch: 0.1,
    examples: 4,
    accuracy: 0.5,
    loss: 1,
    classes: 2,
    confusion: [1, 1, 1, 1],
  };
  appendFileSync(join(runDir, 'events.ndjson'), `${JSON.stringify(eval_)}\n`);
  const { html } = await buildReport([runDir], { cacheDir: join(root, 'cache') });
  t.true(html.includes(escapeHtml(split)), 'the planted split is in the page, escaped');
  const file = join(root, 'report.html');
  writeFileSync(file, html);
  const url = pathToFileURL(file).href;
  const control = join(root, 'control.html');
  writeFileSync(control, html.replace(escapeHtml(split), split));
  const controlUrl = pathToFileURL(control).href;

  const context = await launchChromium();
  try {
    const requests: string[] = [];
    context.on('request', (r) => {
      requests.push(r.url());
    });
    await context.route(
      (u) => u.href !== url && u.href !== controlUrl,
      (route) => route.abort(),
    );
    const page = await context.newPage();
    const navigations: string[] = [];
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations.push(f.url());
    });
    // The control: the same page with the markup unescaped does try to leave (a meta refresh is
    // not something a CSP can block), so the checks below can see an injection when there is one.
    const probe = await context.newPage();
    const left = probe.waitForRequest('http://127.0.0.1:9/meta');
    await probe.goto(controlUrl, { waitUntil: 'load' });
    await left;
    await probe.close();
    requests.length = 0;

    await page.goto(url, { waitUntil: 'load' });
    // The control left within moments of loading; give the report far longer than that.
    await page.waitForTimeout(1000);
    t.is(page.url(), url, 'still on the report');
    t.deepEqual(navigations, [url], 'one navigation: the report itself');
    t.is(await page.evaluate('window.__planted'), undefined, 'no planted script ran');
    const planted = await page.evaluate(`({
        meta: document.querySelectorAll('meta[http-equiv="refresh"]').length,
        base: document.querySelectorAll('base').length,
        img: document.querySelectorAll('img[onerror]').length,
        form: document.querySelectorAll('form, #planted').length,
        scripts: document.querySelectorAll('script').length,
      })`);
    t.deepEqual(planted, { meta: 0, base: 0, img: 0, form: 0, scripts: 0 }, 'no planted element exists');
    t.true(
      (await page.textContent('body'))!.includes('<meta http-equiv="refresh"'),
      'the markup reads as text',
    );
    t.deepEqual(
      requests.filter((r) => !r.startsWith('data:')),
      [url],
      'the only request is the page itself',
    );
  } finally {
    await context.close();
  }
});
