/**
 * `rxtrain report` only reads a run directory: a module its config.yaml names is never imported,
 * and a remote source is read from the download cache or not at all — never fetched.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { runExperiment } from '../src/pipeline/run.js';
import { buildReport } from '../src/report/report.js';
import { builtinStages } from '../src/stages/index.js';
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
  const { appendFileSync } = await import('node:fs');
  appendFileSync(join(runDir, 'events.ndjson'), `${planted.join('\n')}\n`);
  const started = performance.now();
  const report = await buildReport([runDir], { cacheDir: join(root, 'cache') });
  t.true(performance.now() - started < 60_000, 'no classes² loop over 200,000 classes');
  t.false(report.html.includes('http-equiv="refresh"'), 'no planted markup in the page');
  t.regex(report.html, /3 events in events\.ndjson did not fit the event format and were left out/);
});
