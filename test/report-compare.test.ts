/**
 * What the report does to compare runs at a glance, on hand-made data: labels by the settings that
 * differ, axes fitted to the data with readable ticks, sparse series as markers, the best step and
 * early stopping marked, and confusion matrices that stay legible at 50 classes.
 */
import test from 'ava';
import { axis, fitRange, labelWidth, tickLabel } from '../src/report/axis.js';
import { compareSettings, flattenConfig, runLabels } from '../src/report/compare.js';
import { cellSize, confusionHeatMap } from '../src/report/heatmap.js';
import { isSparse, lineChart } from '../src/report/svg.js';

const config = (lr: number, batchSize: number, extra = '') =>
  `name: mnist-logreg\nseed: 0\nmodules: []\nstages:\n  - type: fetch\n    id: fetch\n    url: embedded:mnist\n  - type: sgd\n    id: sgd\n    lr: ${lr}\n    batchSize: ${batchSize}\n    schedule:\n      type: cosine\n${extra}`;

test('runs are labelled by the settings in which they differ', (t) => {
  const settings = [config(0.1, 64), config(0.5, 64), config(0.1, 256)].map(flattenConfig);
  const comparison = compareSettings(settings);
  t.deepEqual(comparison.keys, ['sgd.lr', 'sgd.batchSize']);
  t.deepEqual(runLabels(['a', 'b', 'c'], comparison), [
    'lr=0.1 batchSize=64',
    'lr=0.5 batchSize=64',
    'lr=0.1 batchSize=256',
  ]);
  // One run, or equal configs: the directory's name.
  t.deepEqual(runLabels(['a'], compareSettings([settings[0]])), ['a']);
  t.deepEqual(runLabels(['a', 'b'], compareSettings([settings[0], settings[0]])), ['a', 'b']);
  // Two runs that share a label keep it apart by their directories.
  t.deepEqual(runLabels(['a', 'b', 'c'], compareSettings([settings[0], settings[1], settings[0]])), [
    'lr=0.1 (a)',
    'lr=0.5',
    'lr=0.1 (c)',
  ]);
});

test('a setting only one run has compares against "—"; names collide only where they must', (t) => {
  const a = flattenConfig(config(0.1, 64, '    momentum: 0.9\n'));
  const b = flattenConfig(`${config(0.1, 64)}    init:\n      type: zeros\n`);
  const c = flattenConfig(config(0.1, 64).replace('type: cosine', 'type: step'));
  const comparison = compareSettings([a, b, c]);
  t.deepEqual(comparison.keys, ['sgd.schedule.type', 'sgd.momentum', 'sgd.init.type']);
  t.deepEqual([...comparison.short.values()], ['schedule.type', 'momentum', 'init.type']);
  t.deepEqual(runLabels(['a', 'b', 'c'], comparison), [
    'schedule.type=cosine momentum=0.9 init.type=—',
    'schedule.type=cosine momentum=— init.type=zeros',
    'schedule.type=step momentum=— init.type=—',
  ]);
  t.is(flattenConfig('{not yaml'), undefined);
});

test('the value axis fits the settled curves: a 0.88–0.93 band is not squeezed by the step-0 evaluation', (t) => {
  const accuracy = [
    { x: 0, y: 0.08 },
    ...Array.from({ length: 10 }, (_, i) => ({ x: 500 * (i + 1), y: 0.88 + 0.005 * i })),
  ];
  t.deepEqual(fitRange([accuracy]), [0.88, 0.925]);
  const a = axis(0.88, 0.925, 0.06);
  t.deepEqual(
    a.ticks.map((k) => k.label),
    ['0.88', '0.89', '0.90', '0.91', '0.92'],
  );
  t.true(a.min < 0.88 && a.max > 0.925 && a.max < 0.93);
  // Each series is measured on its own steps: a short run beside a long one keeps its points.
  t.deepEqual(
    fitRange([
      [
        { x: 0, y: 5 },
        { x: 300, y: 1 },
      ],
      [{ x: 30_000, y: 0.2 }],
    ]),
    [0.2, 1],
  );
  t.deepEqual(fitRange([[{ x: 0, y: 2.3 }]]), [2.3, 2.3]);
  t.is(tickLabel(30_000, 10_000), '30,000');
  t.is(tickLabel(0.9, 0.01), '0.90');
});

test('the step axis ends at the data, and its last label fits inside the chart', (t) => {
  const points = Array.from({ length: 31 }, (_, i) => ({ x: 1000 * i, y: 1 / (i + 1), title: '' }));
  const svg = lineChart({
    id: 'loss',
    xLabel: 'step',
    yLabel: 'loss',
    series: [{ label: 'r', colour: '#000', points }],
  });
  const labels = [...svg.matchAll(/<text y="[\d.]+" x="([\d.]+)" text-anchor="middle">([^<]+)<\/text>/g)];
  const last = labels.at(-1)!;
  t.is(last[2], '30,000');
  t.true(Number(last[1]) + labelWidth('30,000') / 2 <= 1000, 'the label ends inside the 1000 px chart');
  // The early points beyond the fitted axis are kept, as hollow markers on its edge.
  t.true(svg.includes('class="point beyond above"'));
  t.is([...svg.matchAll(/<circle class="point/g)].length, 31);
});

test('a series of a few evaluations is drawn as markers alone; the best step and early stopping are marked', (t) => {
  t.true(isSparse([{ x: 0 }, { x: 5000 }], 5000));
  t.false(
    isSparse(
      [0, 1, 2, 3, 4, 5].map((i) => ({ x: i * 100 })),
      500,
    ),
  );
  t.true(
    isSparse(
      [0, 1, 2, 3, 4, 50].map((i) => ({ x: i * 100 })),
      5000,
    ),
    'a wide gap',
  );
  const train = Array.from({ length: 20 }, (_, i) => ({ x: 100 * (i + 1), y: 0.8 + i * 0.005, title: '' }));
  const svg = lineChart({
    id: 'accuracy',
    xLabel: 'step',
    yLabel: 'accuracy',
    series: [
      { label: 'train', colour: '#111', points: train },
      {
        label: 'test',
        colour: '#111',
        dash: '6 3',
        points: [0, 2000].map((x) => ({ x, y: 0.9, title: '' })),
      },
    ],
    marks: [
      { kind: 'best', x: 1500, y: 0.9, colour: '#111', title: 'best' },
      { kind: 'stop', x: 2000, colour: '#111', title: 'stop' },
    ],
  });
  const series = svg.split('<g class="series').slice(1);
  t.true(series[0]!.includes('<path'), 'training: a line');
  t.true(series[1]!.startsWith(' sparse"'), 'two evaluations: markers');
  t.false(series[1]!.includes('<path'), 'and no line between them');
  t.regex(svg, /<g class="mark" data-mark="best" data-x="1500" data-y="0.9">/);
  t.regex(svg, /<g class="mark" data-mark="stop" data-x="2000">/);
});

test('a 50-class confusion matrix keeps readable cells and labels', (t) => {
  t.is(cellSize(10), 34);
  t.true(cellSize(20) >= 34 || cellSize(20) * 20 <= 1100);
  const C = 50;
  t.true(cellSize(C) >= 20, `cells of ${cellSize(C)} px`);
  const confusion = Array.from({ length: C * C }, (_, i) => (i % (C + 1) === 0 ? 180 : i % 7 === 0 ? 3 : 0));
  const svg = confusionHeatMap('c', confusion, C);
  t.is([...svg.matchAll(/<g class="cell"/g)].length, C * C);
  t.is([...svg.matchAll(/class="class-label"/g)].length, 2 * C);
  t.regex(svg, /font-size:9px/);
  t.true(Number(svg.match(/width="(\d+)"/)![1]) <= 1100, 'fits the page');
  // Zeros are blank, counts that fit are written.
  t.false(/data-count="0"><rect[^>]*\/><text/.test(svg));
  t.regex(svg, /data-count="180"><rect[^>]*\/><text[^>]*>180<\/text>/);
});
