import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { MNIST_DIR, runCli, tempDir } from './helpers/index.js';

/** A copy of the MNIST files with one of them damaged. */
function damagedMnist(file: string, damage: (bytes: Buffer) => Buffer): string {
  const dir = tempDir();
  cpSync(MNIST_DIR, dir, { recursive: true });
  writeFileSync(join(dir, file), damage(readFileSync(join(dir, file))));
  return dir;
}

test('a corrupt IDX magic fails the run with exit 1 and one line naming the file and byte offset', async (t) => {
  const dir = damagedMnist('t10k-images-idx3-ubyte', (b) =>
    Buffer.concat([Buffer.from([0x12]), b.subarray(1)]),
  );
  const runDir = join(tempDir(), 'run');
  const r = await runCli([
    'run',
    'config/mnist-logreg.yaml',
    '--set',
    `fetch.url=${dir}`,
    '--run-dir',
    runDir,
    '--quiet',
  ]);
  t.is(r.code, 1);
  t.is(
    r.stderr,
    `rxtrain: E_IDX_MAGIC: ${join(dir, 't10k-images-idx3-ubyte')}: byte 0: bad IDX magic 0x12000803 (an IDX file starts with 00 00)\n`,
  );
  t.is(r.stdout, '');
  const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
  t.is(summary.status, 'failed');
  t.is(summary.error.code, 'E_IDX_MAGIC');
  t.false(existsSync(join(runDir, 'weights.f32')), 'no weights from a failed run');
});

test('a truncated IDX body fails with the offset where the file ends; --debug adds the stack', async (t) => {
  const dir = damagedMnist('train-images-idx3-ubyte', (b) => b.subarray(0, 5_000_000));
  const run = (...extra: string[]) =>
    runCli([
      'run',
      'config/mnist-logreg.yaml',
      '--set',
      `fetch.url=${dir}`,
      '--run-dir',
      join(tempDir(), 'r'),
      '--quiet',
      ...extra,
    ]);
  const r = await run();
  t.is(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1);
  t.regex(lines[0]!, /E_IDX_TRUNCATED: .*train-images-idx3-ubyte: byte 5000000: file ends early/);
  const debug = await run('--debug');
  t.is(debug.code, 1);
  t.regex(debug.stderr, /\n\s+at /, 'stack trace under --debug');
});

test('usage errors exit 2 with a hint', async (t) => {
  const unknown = await runCli(['frobnicate']);
  t.is(unknown.code, 2);
  t.regex(
    unknown.stderr,
    /unknown command "frobnicate" \(commands: run, resume, validate, stages, inspect, predict, report, serve, schema, sweep, worker, synth;/,
  );
  const option = await runCli(['run', 'config/mnist-logreg.yaml', '--bogus']);
  t.is(option.code, 2);
  t.is(option.stderr, "rxtrain: E_USAGE: Unknown option '--bogus' (see rxtrain run --help)\n");
  const stage = await runCli(['stages', 'nosuch']);
  t.deepEqual([stage.code, stage.stdout], [2, '']);
  t.regex(stage.stderr, /^rxtrain: E_USAGE: no stage type "nosuch" \(known: fetch, untar, /);
  const topic = await runCli(['help', 'nosuch']);
  t.is(topic.code, 2);
  t.regex(topic.stderr, /unknown command "nosuch"/);
  const missing = await runCli(['run', 'no/such/config.yaml']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /no\/such\/config\.yaml: cannot read config \(ENOENT\)/);
  const none = await runCli([]);
  t.is(none.code, 2);
  // The sweep's trial host is not for hands: without its IPC channel it says who starts it.
  const host = await runCli(['trial-host']);
  t.deepEqual(
    [host.code, host.stderr],
    [2, 'rxtrain: E_USAGE: trial-host is started by rxtrain sweep (it needs an IPC channel)\n'],
  );
});

test('--help and --version', async (t) => {
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: rxtrain <command>/);
  const runHelp = await runCli(['run', '--help']);
  t.regex(runHelp.stdout, /--set K=V/);
  const helpRun = await runCli(['help', 'run']);
  t.deepEqual([helpRun.code, helpRun.stdout], [0, runHelp.stdout]);
  const version = await runCli(['--version']);
  t.regex(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('run writes config.yaml, events.ndjson, summary.json and the weights; one result line on stdout', async (t) => {
  const runDir = join(tempDir(), 'nb');
  const r = await runCli([
    'run',
    'config/mnist-notebook.yaml',
    '--run-dir',
    runDir,
    '--set',
    'sgd.steps=300',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.split('\n').filter(Boolean).length, 1);
  t.regex(
    r.stdout,
    /^completed mnist-notebook: test accuracy 0\.\d{4} \(loss \d+\.\d{4}\); best test\.accuracy 0\.\d{4} at step 300; step cap reached after 300 steps/,
  );
  t.notRegex(r.stderr, /\x1b\[/, 'no escape codes off a TTY');
  const resolved = parse(readFileSync(join(runDir, 'config.yaml'), 'utf8'));
  t.is(resolved.stages[5].steps, 300, 'the resolved config has the override');
  t.is(resolved.stages[5].lr, 0.02);
  for (const f of ['events.ndjson', 'summary.json', 'weights.f32', 'model.json'])
    t.true(existsSync(join(runDir, f)), f);
  const model = JSON.parse(readFileSync(join(runDir, 'model.json'), 'utf8'));
  t.is(model.rows, 785);
  t.is(model.classes, 10);
});

test('the default run directory is runs/<name>-<timestamp>', async (t) => {
  const cwd = tempDir();
  const r = await runCli(
    ['run', join(process.cwd(), 'config/mnist-notebook.yaml'), '--set', 'sgd.steps=10', '--quiet'],
    { cwd },
  );
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stdout,
    new RegExp(`run dir ${cwd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/runs/mnist-notebook-\\d{8}-\\d{6}\\n`),
  );
});
