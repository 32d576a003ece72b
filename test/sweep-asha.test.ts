/**
 * ASHA end to end, one trial at a time so that its decisions are fixed: three trials whose
 * validation accuracy at the first rung ranks them best, middle, worst in the order they run. Each
 * is stopped at the rung (n < η, then not in the top ⌊3/3⌋ = 1); with nothing left to start, the
 * best is promoted — resumed from its checkpoint — and trained to the end, with the weights of a
 * plain run of its config.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { type RunSummary, runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { runCli, tempDir } from './helpers/index.js';
import { slowCheckpointWrites } from './helpers/resume.js';
import { readState, sweepEvents, tinyBase, tinyData, trialEvents, writeSweep } from './helpers/sweep.js';

test('ASHA stops every trial at the first rung, promotes the best by resuming it, and trains it to the end exactly', async (t) => {
  const root = tempDir('rxtrain-asha-');
  const cache = join(root, 'cache');
  const file = writeSweep(root, 'asha', {
    base: tinyBase(await tinyData(join(root, 'data')), 400),
    parameters: { 'sgd.lr': { values: [0.1, 0.01, 0.001] } },
    scheduler: { type: 'asha', minResource: 100, reductionFactor: 3 },
  });
  const dir = join(root, 'sweep');
  // Checkpoint writes (every 100 steps) pause 200 ms: a trial is still at its rung when told to stop.
  const result = await runCli(
    ['sweep', file, '--sweep-dir', dir, '--cache', cache, '--parallel', '1', '--quiet'],
    {
      env: slowCheckpointWrites(200),
    },
  );
  t.is(result.code, 0, result.stderr);

  const state = readState(dir)!;
  const [best, middle, worst] = state.trials;
  t.deepEqual(
    state.trials.map((x) => [x.params['sgd.lr'], x.status, x.attempts]),
    [
      [0.1, 'done', 2],
      [0.01, 'stopped-early', 1],
      [0.001, 'stopped-early', 1],
    ],
  );
  const events = sweepEvents(dir);
  t.deepEqual(
    events.flatMap((e) =>
      e.type === 'trial-rung' ? [`${e.trial} ${e.rung} ${e.rank}/${e.of} ${e.decision}`] : [],
    ),
    [
      `${best!.id} 0 1/1 stop`,
      `${middle!.id} 0 2/2 stop`,
      `${worst!.id} 0 3/3 stop`,
      `${best!.id} 1 1/1 continue`,
    ],
  );
  t.like(events.filter((e) => e.type === 'trial-started').at(-1), {
    trial: best!.id,
    action: 'resume',
    was: 'stopped-early',
    promotedFrom: 0,
  });
  // Stopped with a checkpoint (SIGTERM → 143), right after the rung, so each can be promoted later.
  for (const trial of [middle!, worst!]) {
    t.is(trial.exitCode, 143);
    t.true(trial.steps! >= 100 && trial.steps! < 400, `${trial.id} stopped at step ${trial.steps}`);
    t.true(trialEvents(dir, trial.id).some((e) => e.type === 'checkpoint' && e.reason === 'signal'));
  }
  // The promoted trial: one history, resumed once, every step trained once, the plain run's weights.
  const resumed = trialEvents(dir, best!.id).filter((e) => e.type === 'resumed');
  t.is(resumed.length, 1);
  t.is(best!.stepsSpent, 400);
  const summary = JSON.parse(
    readFileSync(join(dir, 'trials', best!.id, 'summary.json'), 'utf8'),
  ) as RunSummary;
  const config = await loadConfig(join(dir, 'base.yaml'), {
    stages: builtinStages,
    overrides: best!.overrides,
  });
  const plain = await runExperiment({ config, runDir: join(root, 'plain'), cacheDir: cache });
  t.is(summary.weightsSha256, plain.weightsSha256);
  t.is(JSON.parse(readFileSync(join(dir, 'sweep-summary.json'), 'utf8')).best.trial, best!.id);
});
