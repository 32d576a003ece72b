import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents, type RxtrainEvent } from '../src/pipeline/events.js';
import { runExperiment } from '../src/pipeline/run.js';
import { diverging, sequential } from '../src/report/colormap.js';
import { escapeHtml } from '../src/report/escape.js';
import { imageShape, weightTemplates } from '../src/report/pictures.js';
import { crc32, encodePng } from '../src/report/png.js';
import { buildReport } from '../src/report/report.js';
import { readRunDir } from '../src/report/runDir.js';
import { niceTicks } from '../src/report/svg.js';
import { builtinStages } from '../src/stages/index.js';
import { MNIST_DIR, ROOT, runCli, tempDir } from './helpers/index.js';

/** Decode the PNGs encodePng writes (RGB, filter 0 on every row): width, height, pixels. */
function decodePng(png: Buffer): { width: number; height: number; rgb: Uint8Array } {
  const chunks = new Map<string, Buffer>();
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (png.readUInt32BE(at + 8 + length) !== crc32(png.subarray(at + 4, at + 8 + length)))
      throw new Error(`bad CRC in ${type}`);
    chunks.set(type, data);
    at += 12 + length;
  }
  const ihdr = chunks.get('IHDR')!;
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const raw = inflateSync(chunks.get('IDAT')!);
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    if (raw[y * (width * 3 + 1)] !== 0) throw new Error('unexpected filter');
    rgb.set(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)), y * width * 3);
  }
  return { width, height, rgb };
}

const fromDataUrl = (url: string) => Buffer.from(url.replace(/^data:image\/png;base64,/, ''), 'base64');

/** A short real run of the default experiment: 300 steps, an evaluation every 100. */
async function shortRun(dir: string, overrides: string[] = []): Promise<string> {
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
    stages: builtinStages,
    overrides: ['sgd.steps=300', 'sgd.logEvery=50', 'evaluate.every=100', ...overrides],
  });
  await runExperiment({ config, runDir: dir, cacheDir: tempDir() });
  return dir;
}

test('CRC-32 and PNG structure follow the spec', (t) => {
  t.is(crc32(Buffer.from('123456789')), 0xcbf43926, 'the standard CRC-32 check value');
  t.is(crc32(Buffer.from('IEND')), 0xae426082, 'every PNG ends with this CRC');
  const rgb = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i * 13);
  const png = encodePng(3, 2, rgb);
  t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.deepEqual(png.subarray(-12), Buffer.from('0000000049454e44ae426082', 'hex'));
  const back = decodePng(png);
  t.is(back.width, 3);
  t.is(back.height, 2);
  t.deepEqual(back.rgb, rgb);
  t.throws(() => encodePng(3, 2, new Uint8Array(5)), { instanceOf: RangeError });
});

test('colour maps: blue for negative, white for zero, red for positive; white to dark blue', (t) => {
  t.deepEqual(diverging(-1), [0x21, 0x66, 0xac]);
  t.deepEqual(diverging(0), [0xf7, 0xf7, 0xf7]);
  t.deepEqual(diverging(1), [0xb2, 0x18, 0x2b]);
  t.deepEqual(diverging(7), diverging(1), 'clamped');
  t.deepEqual(sequential(0), [0xf7, 0xfb, 0xff]);
  t.deepEqual(sequential(1), [0x08, 0x30, 0x6b]);
});

test('axis ticks are round numbers covering the data', (t) => {
  t.deepEqual(niceTicks(0, 4690), [0, 1000, 2000, 3000, 4000, 5000]);
  t.deepEqual(niceTicks(0.0501, 0.9211), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.deepEqual(niceTicks(0.27, 2.31), [0, 0.5, 1, 1.5, 2, 2.5]);
  t.deepEqual(niceTicks(3, 3), [2.6, 2.8, 3, 3.2, 3.4]);
});

test('text is escaped for HTML text and attributes', (t) => {
  t.is(
    escapeHtml(`<a href="x" title='y'>&</a>`),
    '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
  );
});

const pixels = { width: 784, scale: new Float32Array(784).fill(1 / 255), shift: null, bias: true };
const softmax = { type: 'softmax', inputShape: [28, 28], bias: true, hidden: [], classes: 10 } as const;

test('weight templates: column c of the weights drawn as a 28×28 image, bias row apart', (t) => {
  const classes = 10;
  const features = 784;
  const weights = new Float32Array((features + 1) * classes);
  // Class 3: pixel (row 0, col 1) strongly positive, pixel (row 27, col 27) strongly negative.
  weights[1 * classes + 3] = 2;
  weights[783 * classes + 3] = -2;
  for (let j = 0; j < features; j++) weights[j * classes + 5] = 0.001 * (j % 7); // small, positive
  weights[features * classes + 3] = 0.25; // the bias of class 3
  const t3 = weightTemplates({ architecture: softmax, weights, step: 1, transform: pixels });
  t.deepEqual(t3.shape, [28, 28]);
  t.is(t3.max, 2);
  const png = decodePng(fromDataUrl(t3.templates[3]!.png));
  t.is(png.width, 28);
  t.is(png.height, 28);
  const pixel = (x: number, y: number) => [...png.rgb.subarray((y * 28 + x) * 3, (y * 28 + x) * 3 + 3)];
  t.deepEqual(pixel(1, 0), [0xb2, 0x18, 0x2b], 'positive weight → red');
  t.deepEqual(pixel(27, 27), [0x21, 0x66, 0xac], 'negative weight → blue');
  t.deepEqual(pixel(5, 5), [0xf7, 0xf7, 0xf7], 'zero → white');
  t.is(t3.templates[3]!.bias, 0.25);
  t.is(t3.templates[0]!.bias, 0);
  t.deepEqual(imageShape(784, [28, 28]), [28, 28]);
  t.deepEqual(imageShape(12, [3, 4]), [3, 4]);
  t.deepEqual(imageShape(10), [1, 10]);
});

test('an MLP is drawn as its first layer’s strongest units: ‖incoming‖·‖outgoing‖, strongest first', (t) => {
  const architecture = { ...softmax, type: 'mlp', hidden: [20], activation: 'relu' } as const;
  const weights = new Float32Array(785 * 20 + 21 * 10);
  const W2 = 785 * 20;
  for (let k = 0; k < 20; k++) {
    for (let j = 0; j < 784; j++) weights[j * 20 + k] = 0.01; // a faint background
    weights[k * 37 * 20 + k] = 1 + k / 10; // incoming: unit k sees one pixel well
    weights[W2 + k * 10 + (k % 10)] = k === 4 ? 100 : 1; // outgoing: unit 4 speaks loudest
  }
  weights[784 * 20 + 4] = -0.5; // unit 4's bias
  const units = weightTemplates({ architecture, weights, step: 1, transform: pixels });
  t.is(units.kind, 'units');
  t.is(units.units, 20);
  t.is(units.templates.length, 16);
  t.deepEqual(
    units.templates.slice(0, 4).map((u) => u.index),
    [4, 19, 18, 17],
  );
  t.is(units.templates[0]!.bias, -0.5);
  const incoming = Math.sqrt(783 * 0.01 ** 2 + 1.4 ** 2);
  t.true(Math.abs(units.templates[0]!.strength! - incoming * 100) < 1e-4);
  const png = decodePng(fromDataUrl(units.templates[0]!.png));
  const at = 4 * 37;
  t.deepEqual([...png.rgb.subarray(at * 3, at * 3 + 3)], [0xb2, 0x18, 0x2b], 'the pixel unit 4 sees, red');
});

test('a report of a real run: curves with every logged point, confusion summing to the test set, ten templates, the misclassified digits', async (t) => {
  const run = await shortRun(join(tempDir(), 'short'));
  const events = parseEvents(readFileSync(join(run, 'events.ndjson'), 'utf8'));
  const trains = events.filter((e) => e.type === 'train');
  const evals = events.filter((e): e is Extract<RxtrainEvent, { type: 'eval' }> => e.type === 'eval');
  t.is(trains.length, 6);
  t.is(evals.length, 4);
  const { html } = await buildReport([run], { cacheDir: tempDir() });

  const chart = (id: string) =>
    html.slice(
      html.indexOf(`data-chart="${id}"`),
      html.indexOf('</svg>', html.indexOf(`data-chart="${id}"`)),
    );
  const points = (svg: string) => [
    ...svg.matchAll(/<circle class="point[^"]*"[^>]*data-x="([\d.]+)" data-y="([\d.e-]+)"/g),
  ];
  const loss = points(chart('loss'));
  t.is(loss.length, trains.length + evals.length);
  t.deepEqual(
    loss.slice(0, trains.length).map((m) => [Number(m[1]), Number(m[2])]),
    trains.map((e) => [(e as { step: number }).step, (e as { loss: number }).loss]),
  );
  const accuracy = points(chart('accuracy'));
  t.is(accuracy.length, trains.length + evals.length);
  t.deepEqual(
    accuracy.slice(trains.length).map((m) => Number(m[2])),
    evals.map((e) => e.accuracy),
  );

  const last = evals.at(-1)!;
  const cells = [
    ...chart('confusion-0-test').matchAll(/data-true="(\d)" data-predicted="(\d)" data-count="(\d+)"/g),
  ];
  t.is(cells.length, 100);
  t.is(
    cells.reduce((s, m) => s + Number(m[3]), 0),
    10000,
  );
  t.deepEqual(
    cells.map((m) => Number(m[3])),
    last.confusion,
  );
  t.regex(
    html,
    new RegExp(`<tr data-class="0"><td>0</td><td>980</td><td>${last.precision![0]!.toFixed(4)}</td>`),
  );

  const templates = [
    ...html.matchAll(/<figure class="template" data-class="(\d)"><img src="(data:image\/png;base64,[^"]+)"/g),
  ];
  t.is(templates.length, 10);
  t.is(decodePng(fromDataUrl(templates[0]![2]!)).width, 28);

  const digits = [
    ...html.matchAll(
      /<figure class="digit" data-index="(\d+)" data-label="(\d)" data-predicted="(\d)"><img src="([^"]+)"/g,
    ),
  ];
  t.is(digits.length, last.misclassified!.length);
  t.true(digits.length > 0);
  t.deepEqual(
    digits.map((m) => Number(m[1])),
    last.misclassified!.map((m) => m.index),
  );
  // The pixels are the test image itself: compare with the t10k file, ink dark on white.
  const images = readFileSync(join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  const first = digits[0]!;
  const index = Number(first[1]);
  const png = decodePng(fromDataUrl(first[4]!));
  const expected = images.subarray(16 + index * 784, 16 + (index + 1) * 784);
  t.deepEqual(
    [...png.rgb].filter((_, i) => i % 3 === 0),
    [...expected].map((v) => 255 - v),
  );

  t.regex(html, /<pre class="config">name: mnist-logreg\n/);
  t.notRegex(html, /\b(src|href)="(?!data:|#)/, 'nothing but data: URLs and in-page links');
  t.regex(html, /Content-Security-Policy" content="default-src 'none'; img-src data:/);
});

test('several runs overlay their curves; what a run directory lacks becomes a note, not a failure', async (t) => {
  const parent = tempDir();
  const a = await shortRun(join(parent, 'a'));
  const b = await shortRun(join(parent, 'b'), ['sgd.lr=0.01']);
  // A run that was killed early: only its event log and config.
  const killed = join(parent, 'killed');
  mkdirSync(killed);
  const lines = readFileSync(join(a, 'events.ndjson'), 'utf8').split('\n');
  // Cut just after its first train event (how many progress events precede it varies with load).
  const firstTrain = lines.findIndex((l) => l.includes('"type":"train"'));
  writeFileSync(join(killed, 'events.ndjson'), `${lines.slice(0, firstTrain + 1).join('\n')}\n{"type":"tr`);
  writeFileSync(join(killed, 'config.yaml'), readFileSync(join(a, 'config.yaml')));

  const warnings: string[] = [];
  const { html, runs } = await buildReport([a, b, killed], {
    cacheDir: tempDir(),
    onWarning: (w) => warnings.push(w),
  });
  // Named by the setting in which they differ; a and killed share theirs, so their directories follow.
  t.deepEqual(
    runs.map((r) => [r.label, r.status]),
    [
      ['lr=1 (a)', 'completed'],
      ['lr=0.01', 'completed'],
      ['lr=1 (killed)', 'running'],
    ],
  );
  const series = [...html.matchAll(/<g class="series[^"]*" data-series="\d+" data-label="([^"]+)"/g)].map(
    (m) => m[1],
  );
  for (const label of [
    'lr=1 (a) · train loss',
    'lr=0.01 · train loss',
    'lr=1 (killed) · train loss',
    'lr=1 (a) · test accuracy',
    'lr=0.01 · test accuracy',
  ])
    t.true(series.includes(label), label);
  t.regex(html, /no summary\.json: the run is still going/);
  // The one setting that differs, in a table; the full configs folded away.
  t.regex(
    html,
    /<tr data-key="sgd\.lr"><td><code>sgd\.lr<\/code><\/td><td>1<\/td><td>0\.01<\/td><td>1<\/td><\/tr>/,
  );
  t.is([...html.matchAll(/<tr data-key=/g)].length, 1);
  t.is([...html.matchAll(/<details class="config"/g)].length, 3);
  t.regex(html, /No final weights/);
  t.deepEqual(warnings, []);
});

test('everything from a run directory is escaped: names, splits, config text', async (t) => {
  const dir = join(tempDir(), 'run<b>&"x"');
  mkdirSync(dir);
  const hostile = '<img src=x onerror=alert(1)>';
  const event = (e: Record<string, unknown>, seq: number) =>
    JSON.stringify({ ...e, time: '2026-01-01T00:00:00.000Z', elapsedMs: seq, seq });
  writeFileSync(
    join(dir, 'events.ndjson'),
    [
      event({ type: 'run-started', run: 'x', config: `n${hostile}`, runDir: dir, version: '0' }, 0),
      event(
        {
          type: 'train',
          step: 10,
          epoch: 0.1,
          samples: 10,
          loss: 1,
          accuracy: 0.5,
          lr: 0.1,
          samplesPerSec: 1,
        },
        1,
      ),
      event(
        {
          type: 'eval',
          split: hostile,
          step: 10,
          epoch: 0.1,
          examples: 2,
          accuracy: 0.5,
          loss: 1,
          classes: 2,
          confusion: [1, 0, 1, 0],
          misclassified: [{ index: 1, label: 1, predicted: 0 }],
        },
        2,
      ),
    ].join('\n'),
  );
  writeFileSync(join(dir, 'config.yaml'), `name: x\n# </pre><script>alert(1)</script>\n`);
  const warnings: string[] = [];
  const { html } = await buildReport([dir], { cacheDir: tempDir(), onWarning: (w) => warnings.push(w) });
  t.false(html.includes('<script'), 'no script element');
  t.false(html.includes('<img src=x'), 'no injected image');
  t.false(html.includes('<b>&'), 'the directory name is escaped');
  t.true(html.includes('&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.true(html.includes('run&lt;b&gt;&amp;&quot;x&quot;'));
  t.true(html.includes('&lt;img src=x onerror=alert(1)&gt; accuracy'));
  t.is(warnings.length, 1, 'the unreadable config is reported, and the report still written');
  t.regex(warnings[0]!, /pixels could not be read/);
});

test('bad run directories: one clear error naming the file', async (t) => {
  const empty = tempDir();
  await t.throwsAsync(buildReport([empty], { cacheDir: empty }), {
    message: `${empty}: not a run directory (no events.ndjson; see rxtrain run)`,
  });
  await t.throwsAsync(buildReport([join(empty, 'nope')], { cacheDir: empty }), {
    message: `${join(empty, 'nope')}: no such run directory`,
  });
  const dir = tempDir();
  writeFileSync(join(dir, 'events.ndjson'), '');
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({ rows: 785, classes: 10, features: { width: 784, bias: true } }),
  );
  writeFileSync(join(dir, 'weights.f32'), Buffer.alloc(100));
  const error = t.throws(() => readRunDir(dir));
  t.is((error as { code?: string }).code, 'E_DATA');
  t.is(
    error!.message,
    `${join(dir, 'weights.f32')}: 100 bytes, but model.json describes 7850 float32 weights (31400 bytes)`,
  );
});

test('rxtrain report writes the page and says where; no run dir is a usage error', async (t) => {
  const run = await shortRun(join(tempDir(), 'cli'));
  const out = join(tempDir(), 'page.html');
  const r = await runCli(['report', run, '--out', out, '--cache', tempDir()]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^wrote ${out} \\(1 run, \\d+ KB\\)\\n$`));
  t.regex(readFileSync(out, 'utf8'), /^<!doctype html>/);
  const usage = await runCli(['report']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /usage: rxtrain report <run-dir>/);
});
