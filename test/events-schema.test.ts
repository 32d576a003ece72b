/**
 * The event format as a contract (docs/events.md): the committed JSON Schema and the doc's tables
 * are current with src/pipeline/eventSchema.ts, and real event logs — a run with a held-out split
 * and checkpoints, one replayed from a warm cache that stops early, one interrupted and resumed,
 * one that fails — validate line by line against the committed schema with ajv, between them
 * using every event type the contract lists.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { generatedEventReference } from '../scripts/docs.js';
import { EVENTS_SCHEMA, eventsJsonSchema } from '../scripts/schema.js';
import { EVENT_TYPES, EVENTS_VERSION } from '../src/pipeline/eventSchema.js';
import type { RxtrainEvent } from '../src/pipeline/events.js';
import { ROOT, runCli, smallMnist, tempDir } from './helpers/index.js';
import { jsonSchemaValidator } from './helpers/jsonSchemaValidator.js';

// Every event type the code can write is in the contract (a compile-time check).
type Unlisted = Exclude<RxtrainEvent['type'], (typeof EVENT_TYPES)[number]>;
const everyTypeListed: [Unlisted] extends [never] ? true : false = true;

const validator = await jsonSchemaValidator();
const ajvTest = validator ? test : test.skip;

test('the committed event schema and docs/events.md are current (npm run schema, npm run docs)', (t) => {
  t.true(everyTypeListed);
  t.deepEqual(JSON.parse(readFileSync(join(ROOT, EVENTS_SCHEMA), 'utf8')), JSON.parse(eventsJsonSchema()));
  t.true(readFileSync(join(ROOT, 'docs/events.md'), 'utf8').includes(generatedEventReference()));
  t.true(readFileSync(join(ROOT, 'docs/events.md'), 'utf8').includes(`now **${EVENTS_VERSION}**`));
});

const run = (
  dir: string,
  cache: string,
  sets: string[],
  env?: NodeJS.ProcessEnv,
  onSpawn?: (pid: number) => void,
) =>
  runCli(
    [
      'run',
      'config/mnist-logreg.yaml',
      '--run-dir',
      dir,
      '--cache',
      cache,
      '--quiet',
      // The default pipeline on a tenth of MNIST: the events are the point, not the data.
      ...smallMnist(),
      ...sets.flatMap((s) => ['--set', s]),
    ],
    { env, onSpawn },
  );

async function until(what: string, probe: () => boolean): Promise<void> {
  const end = Date.now() + 120_000;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

ajvTest(
  validator
    ? 'real event logs validate against the committed schema, line by line, using every event type'
    : 'real event logs validate against the schema — SKIPPED: ajv is not installed (npm install --save-dev ajv)',
  async (t) => {
    t.timeout(240_000);
    const validate = validator!.compile(JSON.parse(readFileSync(join(ROOT, EVENTS_SCHEMA), 'utf8')));
    const base = tempDir();
    const cache = tempDir();
    const short = ['sgd.steps=300', 'sgd.logEvery=50'];

    // Held-out split, checkpoints, two evaluated splits; the download and data-stage caches filled.
    const full = join(base, 'full');
    const a = await run(full, cache, [
      ...short,
      'evaluate.every=100',
      'evaluate.splits=[test, val]',
      'shuffle.holdout={size: 1000}',
      'checkpoint.every=100',
    ]);
    t.is(a.code, 0, a.stderr);
    // The caches replayed; stopped early by an improvement nothing can reach.
    const early = join(base, 'early');
    const b = await run(early, cache, [
      ...short,
      'evaluate.every=50',
      'evaluate.patience=1',
      'evaluate.minDelta=0.5',
    ]);
    t.is(b.code, 0, b.stderr);
    // Interrupted by SIGINT while held after its first train event, then resumed. The signal is
    // handled at the next turn of the event loop after the release, so the run must still have
    // thousands of steps (many 25 ms slices) ahead of it then: with 300 steps a fast machine
    // finished training before the handler ran, and a signal after the last step is not an
    // interruption (exit 0).
    const resumed = join(base, 'resumed');
    const release = join(tempDir(), 'release');
    const preload = pathToFileURL(join(import.meta.dirname, 'helpers/holdTraining.js')).href;
    let pid = 0;
    const held = run(
      resumed,
      cache,
      ['sgd.steps=5000', 'sgd.logEvery=100'],
      { NODE_OPTIONS: `--import ${preload}`, HOLD_AFTER_TRAIN: '1', HOLD_RELEASE: release },
      (p) => {
        pid = p;
      },
    );
    await until('the run to be held', () => existsSync(`${release}.held`));
    process.kill(pid, 'SIGINT');
    writeFileSync(release, 'go');
    t.is((await held).code, 130);
    const c = await runCli(['resume', resumed, '--cache', cache, '--quiet']);
    t.is(c.code, 0, c.stderr);
    // A source that is not there: retried (warnings), then an error.
    const failed = join(base, 'failed');
    const d = await run(failed, tempDir(), [
      'fetch.url=http://127.0.0.1:9/MNIST.tar.gz',
      'fetch.retries=1',
      'fetch.retryDelayMs=5',
    ]);
    t.is(d.code, 1);

    const seen = new Set<string>();
    let lines = 0;
    for (const dir of [full, early, resumed, failed]) {
      for (const text of readFileSync(join(dir, 'events.ndjson'), 'utf8').split('\n')) {
        if (!text) continue;
        const event = JSON.parse(text) as { type: string; eventsVersion?: number };
        lines++;
        seen.add(event.type);
        if (event.type === 'run-started') t.is(event.eventsVersion, EVENTS_VERSION);
        if (!validate(event))
          t.fail(`${dir}: ${text.slice(0, 200)}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
      }
    }
    t.deepEqual([...seen].sort(), [...EVENT_TYPES].sort(), 'every event type of the contract occurs');
    t.log(`${lines} events of ${seen.size} types validated`);
    // The schema is a contract, not a formality: a field the contract does not list is rejected.
    t.false(
      validate({
        type: 'train',
        step: 1,
        epoch: 0,
        samples: 1,
        loss: 1,
        accuracy: 1,
        lr: 1,
        samplesPerSec: 1,
        time: '',
        elapsedMs: 0,
        seq: 0,
        extra: 1,
      }),
    );
    t.false(validate({ type: 'no-such-event', time: '', elapsedMs: 0, seq: 0 }));
  },
);
