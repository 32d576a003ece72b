import { join } from 'node:path';
import test from 'ava';
import { runWithProgress, stagesOf } from '../src/cli/run.js';
import type { CliIo } from '../src/cli.js';
import { loadConfig } from '../src/pipeline/config.js';
import type { RxtrainEvent, RxtrainEventInput } from '../src/pipeline/events.js';
import type { RunSummary } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, runCli, tempDir } from './helpers/index.js';

const SGR = /\x1b\[[\d;]*m/;

const SGD_EVENTS: RxtrainEventInput[] = [
  { type: 'stage-started', stage: 'sgd', stageType: 'sgd', index: 0 },
  { type: 'stage-progress', stage: 'sgd', step: 5, totalSteps: 10 },
  { type: 'warning', code: 'W_X', message: 'careful' },
];

/** A run that only emits a few events, through the CLI's own wiring. */
async function fakeRun(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  tty: boolean,
  { stages = builtinStages, events = SGD_EVENTS } = {},
) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    stderrIsTty: tty,
    stderrColumns: () => 80,
    env,
  };
  await runWithProgress(io, values, stages, async (onEvent) => {
    let seq = 0;
    const emit = (e: RxtrainEventInput) =>
      onEvent({ ...e, time: '2026-01-01T00:00:00.000Z', elapsedMs: seq * 10, seq: seq++ } as RxtrainEvent);
    for (const event of events) emit(event);
    emit({ type: 'run-finished', status: 'completed', steps: 10, durationMs: 20, exitCode: 0 });
    return {
      status: 'completed',
      name: 'fake',
      runDir: '/tmp/fake',
      seed: 0,
      steps: 10,
      epochs: 1,
      samples: 10,
      splits: {},
      durationMs: 20,
      stages: {},
      rxtrainVersion: '0',
    } satisfies RunSummary;
  });
  return { stdout, stderr };
}

test('NO_COLOR turns colour off on a TTY but keeps redrawing in place; an empty NO_COLOR does not', async (t) => {
  const colour = await fakeRun({}, {}, true);
  t.regex(colour.stderr, SGR);
  const noColour = await fakeRun({}, { NO_COLOR: '1' }, true);
  t.notRegex(noColour.stderr, SGR);
  t.regex(noColour.stderr, /\x1b\[\d+F/, 'still redraws in place');
  t.regex((await fakeRun({}, { NO_COLOR: '' }, true)).stderr, SGR);
});

test('the CLI draws a user stage from the config\u2019s modules with its own describeProgress', async (t) => {
  const config = await loadConfig(join(ROOT, 'examples/mnist-subset.yaml'), { stages: builtinStages });
  const events: RxtrainEventInput[] = [
    { type: 'stage-started', stage: 'subset', stageType: 'subset', index: 3 },
    { type: 'stage-progress', stage: 'subset', kept: 2000 },
  ];
  const run = await fakeRun({}, {}, false, { stages: stagesOf(config), events });
  t.regex(run.stderr, /\] subset: 2,000 examples kept\n/);
  const without = await fakeRun({}, {}, false, { events });
  t.regex(without.stderr, /\] subset: kept=2000\n/, 'the built-ins alone do not know the type');
});

test('--quiet draws nothing; --json streams every event to stdout as NDJSON instead of the result line', async (t) => {
  const quiet = await fakeRun({ quiet: true }, {}, true);
  t.is(quiet.stderr, '');
  t.regex(quiet.stdout, /^completed fake: no evaluation after 10 steps/);

  const json = await fakeRun({ json: true, quiet: true }, {}, false);
  const events = json.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as RxtrainEvent);
  t.deepEqual(
    events.map((e) => e.type),
    ['stage-started', 'stage-progress', 'warning', 'run-finished'],
  );
  t.deepEqual(
    events.map((e) => e.seq),
    [0, 1, 2, 3],
  );
});

test('the real command piped: progress on stderr without escapes, events on stdout with --json', async (t) => {
  const dir = tempDir();
  const args = ['run', 'config/mnist-logreg.yaml', '--set', 'sgd.steps=300', '--set', 'evaluate.every=100'];
  const env = { NO_COLOR: '' }; // colour is not what keeps escapes out of a pipe
  const piped = await runCli([...args, '--run-dir', join(dir, 'a'), '--cache', dir], { env });
  t.is(piped.code, 0, piped.stderr);
  t.false(piped.stderr.includes('\x1b'), 'no ESC byte in piped progress');
  t.regex(piped.stderr, /eval test at step 300: accuracy 0\.\d{4}/);
  t.regex(piped.stderr, /run completed after 300 steps/);
  t.regex(piped.stdout, /^completed mnist-logreg: test accuracy/);

  const json = await runCli([...args, '--run-dir', join(dir, 'b'), '--cache', dir, '--json', '--quiet'], {
    env,
  });
  t.is(json.code, 0, json.stderr);
  t.is(json.stderr, '');
  const events = json.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as RxtrainEvent);
  t.is(events[0]!.type, 'run-started');
  t.is(events.at(-1)!.type, 'run-finished');
  t.is(events.filter((e) => e.type === 'eval').length, 4);
});
