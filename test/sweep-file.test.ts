/**
 * Sweep files and plans, in-process (no trial runs): every validation problem at once with its
 * line and column; trial ids as the resolved config's hash; random sampling that extends by
 * prefix; a changed search space refused against an existing sweep directory unless extended;
 * ASHA's promotion rule on hand-worked results.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { configHash } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { Asha } from '../src/sweep/asha.js';
import { openSweep } from '../src/sweep/openSweep.js';
import { planSweep } from '../src/sweep/plan.js';
import { loadSweep } from '../src/sweep/sweepFile.js';
import { ConfigError, RxtrainError } from '../src/util/errors.js';
import { billionLaughs, ROOT, tempDir } from './helpers/index.js';
import { tinyBase, writeSweep } from './helpers/sweep.js';

const root = tempDir('rxtrain-sweepfile-');
const load = (file: string, overrides: string[] = []) =>
  loadSweep(file, { stages: builtinStages, overrides, inlineBaseFile: () => join(root, 'base.yaml') });

test('a broken sweep file: every problem at once, each with its line and column', async (t) => {
  const file = join(root, 'broken.yaml');
  writeFileSync(
    file,
    `name: broken
base: ${join(ROOT, 'config/mnist-logreg.yaml')}
fixed:
  sgd.epohcs: 2
method: grid
count: 5
parameters:
  sgd.lrr: { values: [0.1, 0.3] }
  sdg.batchSize: { values: [32] }
  sgd.momentum: { uniform: [0, 0.9] }
  sgd.schedule: { valuse: [constant] }
scheduler:
  type: asha
  minResource: 250
  reductionFactr: 3
`,
  );
  const error = await t.throwsAsync(load(file, ['sgd.lr=fast']), { instanceOf: ConfigError });
  const lines = error!.message.split('\n');
  t.deepEqual(
    lines.map((l) => l.replace(/ \(did you mean.*|: .*/, '')),
    [
      `${file}:4:15 fixed.sgd.epohcs (stages[5].epohcs)`,
      `${file}:6:8 count`,
      `${file}:8:3 parameters.sgd.lrr`,
      `${file}:9:3 parameters.sdg.batchSize`,
      `${file}:10:28 parameters.sgd.momentum.uniform`,
      `${file}:11:19 parameters.sgd.schedule.valuse`,
      `${file}:15:3 scheduler.reductionFactr`,
      '--set sgd.lr=fast stages[5].lr',
    ],
  );
  t.true(lines[2]!.includes('sgd has no setting "lrr" (did you mean "lr"?)'));
  t.true(lines[3]!.includes('no stage with id "sdg" (did you mean "sgd"?)'));
  t.true(lines[4]!.includes('method grid needs a finite domain'));
});

test('a sweep file is read as a config is: a billion laughs, an oversized file and __proto__ keys are config errors', async (t) => {
  const laughs = billionLaughs();
  const base = `base: ${join(ROOT, 'config/mnist-logreg.yaml')}\n`;
  const cases = {
    'laughs.yaml': [`${laughs}${base}parameters: *a8\n`, /alias/i],
    'huge.yaml': [`# ${'x'.repeat(2 * 1024 * 1024)}\n${base}`, /a sweep file is at most 1048576 \(1 MiB\)/],
    'proto.yaml': [
      `${base}parameters:\n  __proto__: { values: [1] }\n`,
      /:3:3 \(root\): "__proto__" is not a setting name/,
    ],
  } as const;
  for (const [name, [text, message]] of Object.entries(cases)) {
    const file = join(root, name);
    writeFileSync(file, text);
    const error = await t.throwsAsync(load(file), { instanceOf: ConfigError }, name);
    t.regex(error!.message, message, name);
  }
});

test('the metric must be evaluated, and ASHA needs rungs on evaluations', async (t) => {
  const file = join(root, 'asha.yaml');
  writeFileSync(
    file,
    `base: ${join(ROOT, 'config/mnist-logreg.yaml')}
metric: val.accuracy
method: random
count: 3
parameters:
  sgd.lr: { loguniform: [0.01, 1] }
scheduler: { type: asha, minResource: 250 }
`,
  );
  const error = await t.throwsAsync(load(file), { instanceOf: ConfigError });
  t.regex(
    error!.message,
    /asha\.yaml:2:9 metric: no stage of the base evaluates the split "val" \(evaluated: test\)/,
  );
  const fixed = await t.throwsAsync(load(file, ['shuffle.holdout={size: 100}', 'evaluate.splits=[val]']));
  t.regex(
    fixed!.message,
    /asha\.yaml:7:39 scheduler\.minResource: rungs in steps must fall on evaluations: .*\(500\), got 250/,
  );
  t.is(
    (await load(file, ['shuffle.holdout={size: 100}', 'evaluate.splits=[val]', 'evaluate.every=250'])).count,
    3,
  );
});

test("trial ids are the resolved config's hash; points that resolve alike are one trial", async (t) => {
  const base = tinyBase('/nowhere', 100);
  const spec = await load(
    writeSweep(root, 'ids', {
      base,
      // `constant` is short for `{type: constant}`: two points, one experiment.
      parameters: {
        'sgd.lr': { values: [0.1, 0.2] },
        'sgd.schedule': { values: ['constant', { type: 'constant' }, 'cosine'] },
      },
    }),
  );
  const plan = await planSweep(spec);
  t.is(plan.trials.length, 4);
  t.is(plan.duplicates, 2);
  t.deepEqual(plan.varying, ['sgd.lr', 'sgd.schedule']);
  const config = await loadConfig(join(root, 'base.yaml'), {
    stages: builtinStages,
    text: spec.base.text,
    overrides: ['sgd.lr=0.2', 'sgd.schedule=cosine'],
  });
  const trial = plan.trials.find((x) => x.params['sgd.lr'] === 0.2 && x.params['sgd.schedule'] === 'cosine')!;
  t.is(trial.id, configHash(config).slice(0, 10));
});

test('random sampling is seeded, and a larger count keeps the trials already drawn', async (t) => {
  const sweep = (count: number, seed = 1) =>
    load(
      writeSweep(root, `random-${count}-${seed}`, {
        base: tinyBase('/nowhere', 100),
        method: 'random',
        count,
        seed,
        parameters: {
          'sgd.lr': { loguniform: [0.001, 1] },
          'sgd.batchSize': { int: [8, 64] },
          'sgd.schedule': { choice: ['constant', 'cosine'] },
          'sgd.momentum': { range: { min: 0, max: 0.9, step: 0.3 } },
        },
      }),
    ).then(planSweep);
  const five = await sweep(5);
  const eight = await sweep(8);
  t.deepEqual(
    eight.trials.slice(0, 5).map((x) => x.id),
    five.trials.map((x) => x.id),
  );
  t.notDeepEqual(
    (await sweep(5, 2)).trials.map((x) => x.id),
    five.trials.map((x) => x.id),
  );
  for (const { params } of eight.trials) {
    const lr = params['sgd.lr'] as number;
    t.true(lr >= 0.001 && lr < 1);
    t.true(Number.isInteger(params['sgd.batchSize']));
    t.true([0, 0.3, 0.6, 0.9].includes(params['sgd.momentum'] as number));
  }
});

test('a changed search space against an existing sweep directory is an error; --extend adds the new trials', async (t) => {
  const dir = join(root, 'space');
  const sweep = (values: number[], name = 'space') =>
    load(writeSweep(root, name, { base: tinyBase('/nowhere', 100), parameters: { 'sgd.lr': { values } } }));
  const first = await sweep([0.1, 0.2]);
  openSweep(first, await planSweep(first), dir, { extend: false }).lock.release();
  // The same space again: fine.
  const again = await sweep([0.1, 0.2]);
  openSweep(again, await planSweep(again), dir, { extend: false }).lock.release();

  const grown = await sweep([0.1, 0.2, 0.3]);
  const grownPlan = await planSweep(grown);
  const refused = t.throws(() => openSweep(grown, grownPlan, dir, { extend: false }), {
    instanceOf: RxtrainError,
  });
  t.is(refused!.code, 'E_USAGE');
  t.regex(
    refused!.message,
    /the search space differs from the one this sweep was started with \(2 trials\): 1 planned now is not in it \(e\.g\. [0-9a-f]{10} sgd\.lr=0\.3\)\. Pass --extend/,
  );
  const shrunk = await sweep([0.1]);
  const shrunkPlan = await planSweep(shrunk);
  t.regex(
    t.throws(() => openSweep(shrunk, shrunkPlan, dir, { extend: false }))!.message,
    /1 of its trials is no longer planned/,
  );

  const extended = openSweep(grown, grownPlan, dir, { extend: true });
  extended.lock.release();
  t.is(extended.state.trials.length, 3);
  t.deepEqual([...extended.fresh], [grownPlan.trials[2]!.id]);
  t.deepEqual(
    extended.state.trials.map((x) => x.status),
    ['planned', 'planned', 'planned'],
  );
});

test('ASHA: the top ⌊n/η⌋ of a rung go on; a stopped trial is promoted once later results rank it there', (t) => {
  const asha = new Asha({ type: 'asha', resource: 'steps', minResource: 100, reductionFactor: 3 }, 'max');
  t.deepEqual(
    [0, 1, 2].map((k) => asha.resource(k)),
    [100, 300, 900],
  );
  t.true(asha.reaches(0, { step: 100, epoch: 1 }));
  t.false(asha.reaches(1, { step: 200, epoch: 2 }));
  // The first two are alone at the rung: ⌊1/3⌋ = ⌊2/3⌋ = 0 go on.
  asha.record('a', 0, 0.9);
  t.is(asha.decide('a', 0), 'stop');
  asha.record('b', 0, 0.5);
  t.is(asha.decide('b', 0), 'stop');
  // A third, worse: ⌊3/3⌋ = 1 goes on, and that is a, which is waiting: promote it.
  t.deepEqual(asha.record('c', 0, 0.4), { rank: 3, of: 3 });
  t.is(asha.decide('c', 0), 'stop');
  const stopped = [
    { id: 'a', rung: 0 },
    { id: 'b', rung: 0 },
    { id: 'c', rung: 0 },
  ];
  t.deepEqual(asha.promotable(stopped), { id: 'a', rung: 0 });
  asha.markPromoted('a', 0);
  t.is(asha.promotable(stopped), undefined, 'a is promoted once; b is not in the top 1');
  // Six results: the top 2 go on; d, second best as it arrives, goes on at once.
  asha.record('e', 0, 0.1);
  asha.record('f', 0, 0.2);
  asha.record('d', 0, 0.8);
  t.is(asha.decide('d', 0), 'continue');
  t.is(asha.promotable(stopped), undefined);
  // In the tail (nothing left to start) the top ⌈n/η⌉ go on: at rung 1, a alone goes on.
  asha.record('a', 1, 0.95);
  t.is(asha.decide('a', 1), 'stop');
  t.deepEqual(asha.promotable([{ id: 'a', rung: 1 }], true), { id: 'a', rung: 1 });
  // A loss is better lower; a diverged (NaN) result is last.
  const min = new Asha({ type: 'asha', resource: 'epochs', minResource: 0.5, reductionFactor: 2 }, 'min');
  for (const [id, v] of [
    ['x', Number.NaN],
    ['y', 0.3],
    ['z', 0.2],
    ['w', 0.9],
  ] as const)
    min.record(id, 0, v);
  t.deepEqual(min.place('z', 0), { rank: 1, of: 4 });
  t.deepEqual(min.place('x', 0), { rank: 4, of: 4 });
  t.true(min.reaches(0, { step: 7, epoch: 0.5 }));
});
