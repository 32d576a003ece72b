/**
 * bench:augment — what the issue asks `augment` to show, on the default experiment
 * (examples/mnist-augment.yaml is config/mnist-logreg.yaml with `augment` between the sampler and
 * sgd), each run through the real CLI:
 *
 *   1. two runs give the same weightsSha256;
 *   2. every training image gets a different variant in each pass: recording stages on both sides
 *      of `augment` note which table row each sample came from and a hash of what it became, and
 *      the hashes of one row in pass 1 and pass 2 are compared;
 *   3. a run killed with SIGKILL after a random checkpoint and resumed ends with the same weights
 *      as the uninterrupted run;
 *   4. the test accuracy without augment, with it, and with each half (shift only, noise only).
 *
 *   npm run bench:augment
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { transform } from '../src/flow/index.js';
import { loadConfig } from '../src/pipeline/config.js';
import { parseEvents } from '../src/pipeline/events.js';
import { type Message, sampleRow } from '../src/pipeline/messages.js';
import { runExperiment } from '../src/pipeline/run.js';
import { defineStage } from '../src/pipeline/stage.js';
import { builtinStages } from '../src/stages/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/rxtrain.js');
const AUGMENT = join(ROOT, 'examples/mnist-augment.yaml');
const DEFAULT = join(ROOT, 'config/mnist-logreg.yaml');
const work = mkdtempSync(join(tmpdir(), 'rxtrain-bench-augment-'));
const cache = join(work, 'cache');

function cli(args: string[]): { promise: Promise<number | null>; kill: () => void } {
  const child = spawn(process.execPath, [BIN, ...args, '--cache', cache, '--quiet'], { stdio: 'inherit' });
  return {
    promise: new Promise((done) => child.on('close', (code) => done(code))),
    kill: () => child.kill('SIGKILL'),
  };
}

function summary(dir: string): { weightsSha256: string; test: { accuracy: number }; durationMs: number } {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
}

async function run(name: string, config: string, sets: string[] = []) {
  const dir = join(work, name);
  const code = await cli(['run', config, '--run-dir', dir, ...sets.flatMap((s) => ['--set', s])]).promise;
  if (code !== 0) throw new Error(`${name}: exit ${code}`);
  return summary(dir);
}

const rows = new Map<string, number>(); // `${epoch}/${index}` → table row
const variants = new Map<number, string[]>(); // table row → hash of its variant in each pass

/** Before augment: which table row each sample is. */
const rowRecorder = defineStage({
  type: 'recordRows',
  summary: 'bench: note the table row of every sample',
  settings: z.strictObject({}),
  create: () => (input) =>
    transform<Message, Message>(input, () => ({
      next(m, out) {
        if (m.kind === 'samples' && m.epoch < 2)
          for (let i = 0; i < m.count; i++) rows.set(`${m.epoch}/${m.index + i}`, sampleRow(m, i));
        out.push(m);
      },
    })),
});

/** After augment: a hash of what each sample became. */
const variantRecorder = defineStage({
  type: 'recordVariants',
  summary: 'bench: hash every augmented sample',
  settings: z.strictObject({}),
  create: () => (input) =>
    transform<Message, Message>(input, () => ({
      next(m, out) {
        if (m.kind === 'samples' && m.epoch < 2) {
          for (let i = 0; i < m.count; i++) {
            const row = rows.get(`${m.epoch}/${m.index + i}`)!;
            const values = m.data.subarray(i * m.width, (i + 1) * m.width);
            const hash = createHash('sha1')
              .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
              .digest('hex');
            variants.set(row, [...(variants.get(row) ?? []), hash]);
          }
        }
        out.push(m);
      },
    })),
});

async function freshPerPass(): Promise<string> {
  const base = await loadConfig(AUGMENT, {
    stages: builtinStages,
    overrides: ['sgd.epochs=2', 'evaluate.every=0'],
  });
  const i = base.stages.findIndex((s) => s.type === 'augment');
  const stage = (definition: typeof rowRecorder, id: string) => ({
    id,
    type: definition.type,
    definition,
    settings: {},
    capacity: base.stages[i]!.capacity,
  });
  const stages = [
    ...base.stages.slice(0, i),
    stage(rowRecorder, 'recordRows'),
    base.stages[i]!,
    stage(variantRecorder, 'recordVariants'),
    ...base.stages.slice(i + 1),
  ];
  await runExperiment({ config: { ...base, stages }, runDir: join(work, 'per-pass'), cacheDir: cache });
  let twice = 0;
  let differ = 0;
  for (const hashes of variants.values()) {
    if (hashes.length !== 2) continue;
    twice++;
    if (hashes[0] !== hashes[1]) differ++;
  }
  return `${differ} of ${twice} training images got a different variant in pass 2 than in pass 1 (${variants.size} images seen)`;
}

async function killAndResume(reference: string): Promise<string> {
  const dir = join(work, 'killed');
  const started = cli(['run', AUGMENT, '--run-dir', dir, '--set', 'checkpoint.every=200']);
  const target = 400 + 200 * Math.floor(Math.random() * 15); // a checkpoint between 400 and 3,200
  const extraMs = Math.floor(Math.random() * 300);
  const events = join(dir, 'events.ndjson');
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    const text = existsSync(events) ? readFileSync(events, 'utf8') : '';
    if (parseEvents(text).some((e) => e.type === 'checkpoint' && e.step >= target)) break;
  }
  await new Promise((r) => setTimeout(r, extraMs));
  started.kill();
  const code = await started.promise;
  const resumed = cli(['resume', dir]);
  if ((await resumed.promise) !== 0) throw new Error('resume failed');
  const s = summary(dir) as ReturnType<typeof summary> & { resumedFrom?: number };
  const same = s.weightsSha256 === reference;
  return `killed (exit ${code}) ${extraMs} ms after checkpoint ${target}, resumed from step ${s.resumedFrom}: weightsSha256 ${s.weightsSha256.slice(0, 16)}… ${same ? 'equals' : 'DIFFERS FROM'} the uninterrupted run's`;
}

try {
  const plain = await run('default', DEFAULT);
  const a = await run('augment-a', AUGMENT);
  const b = await run('augment-b', AUGMENT);
  console.log(
    `1. two runs of ${AUGMENT}: weightsSha256 ${a.weightsSha256} and ${b.weightsSha256}: ${a.weightsSha256 === b.weightsSha256 ? 'equal' : 'DIFFERENT'}`,
  );
  console.log(`2. ${await freshPerPass()}`);
  console.log(`3. ${await killAndResume(a.weightsSha256)}`);
  const shift = await run('shift-only', AUGMENT, ['augment.noise=0']);
  const noise = await run('noise-only', AUGMENT, ['augment.translate=0']);
  const row = (what: string, s: ReturnType<typeof summary>) =>
    `   ${what.padEnd(42)} test accuracy ${s.test.accuracy.toFixed(4)}  (${(s.durationMs / 1000).toFixed(1)} s)`;
  console.log('4. test accuracy after 5 epochs (batch 64, lr 1 cosine):');
  console.log(row('without augment (config/mnist-logreg.yaml)', plain));
  console.log(row('augment: translate 1, noise 25.5', a));
  console.log(row('augment: translate 1 only', shift));
  console.log(row('augment: noise 25.5 only', noise));
} finally {
  rmSync(work, { recursive: true, force: true });
}
