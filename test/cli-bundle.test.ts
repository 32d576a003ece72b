/**
 * The bundled CLI (`npm run build`: scripts/bundle.ts) does what the modules tsc wrote do: every
 * command loads from its own chunk, a run trains, a user's stage module (which imports the
 * package, a second copy of rxtrain in the process) works and its errors are still rxtrain's. And
 * the command sets its own V8 option when run as a command.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { renamedErrorClasses } from '../scripts/bundleNames.js';
import { loadCached } from '../src/cli/cachedScript.js';
import { commands } from '../src/cli.js';
import { BIN, ROOT, tempDir } from './helpers/index.js';

// At the bundle's own depth (dist/<dir>/cli/), where it finds package.json and node_modules.
const OUT = `dist/test-bundle-${process.pid}/cli`;
const dir = tempDir();
test.before(() => {
  execFileSync(process.execPath, [join(ROOT, 'dist/scripts/bundle.js'), OUT], { stdio: 'pipe' });
});
test.after.always(() => rmSync(join(ROOT, OUT, '..'), { recursive: true, force: true }));

async function main(args: string[]) {
  const cli = await import(join(ROOT, OUT, 'cli.js'));
  let stdout = '';
  let stderr = '';
  const code: number = await cli.main(args, {
    stdout: (s: string) => (stdout += s),
    stderr: (s: string) => (stderr += s),
    stderrIsTty: false,
    env: process.env,
  });
  return { code, stdout, stderr };
}

test.serial('every command loads from the bundle and answers --help', async (t) => {
  t.is(
    (await main(['--version'])).stdout.trim(),
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
  );
  for (const { name } of commands) {
    const r = await main([name, '--help']);
    t.is(r.code, 0, name);
    t.regex(r.stdout, new RegExp(`rxtrain ${name}`), name);
  }
});

test.serial('a run from the bundle trains the same weights as one from the modules', async (t) => {
  const args = (runDir: string) => [
    'run',
    join(ROOT, 'config/mnist-notebook.yaml'),
    ...['--run-dir', runDir, '--cache', join(dir, 'cache'), '--quiet', '--set', 'sgd.steps=200'],
  ];
  t.is((await main(args(join(dir, 'bundled')))).code, 0);
  const modules = spawnSync(process.execPath, [BIN, ...args(join(dir, 'modules'))], {
    env: { ...process.env, RXTRAIN_BUNDLE: '0' },
  });
  t.is(modules.status, 0, modules.stderr.toString());
  const sha = (d: string) => JSON.parse(readFileSync(join(dir, d, 'summary.json'), 'utf8')).weightsSha256;
  t.is(sha('bundled'), sha('modules'));
});

test.serial(
  'run and resume from the CommonJS file bin/rxtrain.js loads with a V8 code cache: the same weights, the cache written once, then used',
  async (t) => {
    const file = join(ROOT, OUT, 'run.cjs');
    const cacheFile = `${file}.v8cache`;
    const io = () => {
      const out = { stdout: '', stderr: '' };
      return {
        out,
        io: {
          stdout: (s: string) => (out.stdout += s),
          stderr: (s: string) => (out.stderr += s),
          stderrIsTty: false,
          env: process.env,
        },
      };
    };
    type Entry = { main(argv: string[], io: object): Promise<number>; COMMANDS: string[] };
    const args = (runDir: string) => [
      'run',
      join(ROOT, 'config/mnist-notebook.yaml'),
      ...['--run-dir', runDir, '--cache', join(dir, 'cache'), '--quiet', '--set', 'sgd.steps=200'],
    ];
    const first = loadCached<Entry>(file, cacheFile);
    t.deepEqual(first.exports.COMMANDS, ['run', 'resume']);
    t.is(first.cache, 'absent');
    const a = io();
    t.is(await first.exports.main(args(join(dir, 'cjs')), a.io), 0, a.out.stderr);
    first.save();
    t.true(statSync(cacheFile).size > 100_000, 'the cache holds the compiled run');
    const second = loadCached<Entry>(file, cacheFile);
    t.is(second.cache, 'used');
    const b = io();
    t.is(await second.exports.main(['resume', join(dir, 'cjs')], b.io), 0, b.out.stderr);
    const sha = (d: string) => JSON.parse(readFileSync(join(dir, d, 'summary.json'), 'utf8')).weightsSha256;
    const modules = spawnSync(process.execPath, [BIN, ...args(join(dir, 'modules-cjs'))], {
      env: { ...process.env, RXTRAIN_BUNDLE: '0' },
    });
    t.is(modules.status, 0, modules.stderr.toString());
    t.is(sha('cjs'), sha('modules-cjs'));
    const c = io();
    t.is(await second.exports.main(['validate', 'x.yaml'], c.io), 2, 'other commands are not served here');
    t.regex(c.out.stderr, /unknown command "validate"/);
  },
);

test.serial(
  'a user stage module runs under the bundle, and its config errors are reported as such',
  async (t) => {
    const config = join(ROOT, 'examples/mnist-subset.yaml');
    const ok = await main([
      'run',
      config,
      '--run-dir',
      join(dir, 'subset'),
      '--cache',
      join(dir, 'cache'),
      '--quiet',
      '--set',
      'sgd.steps=50',
    ]);
    t.is(ok.code, 0, ok.stderr);
    const bad = await main(['validate', config, '--set', 'subset.size=0']);
    t.is(bad.code, 2, bad.stderr);
    t.regex(bad.stderr, /subset\.size|size/);
    t.notRegex(bad.stderr, /internal error/);
  },
);

test('run as a command, rxtrain gives V8 and glibc their start-up options (the first line of bin/rxtrain.js)', (t) => {
  const printer = join(dir, 'print-flags.mjs');
  writeFileSync(
    printer,
    "process.stderr.write('execArgv ' + JSON.stringify(process.execArgv) + ' tunables ' + JSON.stringify(process.env.GLIBC_TUNABLES) + '\\n');\n",
  );
  const { GLIBC_TUNABLES: _, ...env } = process.env;
  const r = spawnSync(BIN, ['--version'], { env: { ...env, NODE_OPTIONS: `--import=${printer}` } });
  t.is(r.status, 0, r.stderr.toString());
  t.regex(r.stderr.toString(), /execArgv .*--max-semi-space-size=1/);
  t.regex(r.stderr.toString(), /execArgv .*--v8-pool-size=1/);
  t.regex(r.stderr.toString(), /execArgv .*--expose-gc/);
  t.regex(r.stderr.toString(), /tunables ":glibc\.malloc\.hugetlb=1"/);
  // A user's own tunables are kept, the huge-page one appended.
  const own = spawnSync(BIN, ['--version'], {
    env: { ...env, NODE_OPTIONS: `--import=${printer}`, GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' },
  });
  t.is(own.status, 0, own.stderr.toString());
  t.regex(own.stderr.toString(), /tunables "glibc\.malloc\.arena_max=2:glibc\.malloc\.hugetlb=1"/);
});

test.serial(
  'an error of one copy of rxtrain is an instance of the same class of the other, and only of it',
  async (t) => {
    const bundled = await import(join(ROOT, OUT, 'index.js'));
    const errors = await import('../src/util/errors.js');
    const idx = new bundled.IdxError('E_IDX_MAGIC', 'f', 0, 'bad magic');
    t.true(idx instanceof errors.IdxError);
    t.true(idx instanceof errors.ByteOffsetError);
    t.true(idx instanceof errors.RxtrainError);
    t.false(idx instanceof errors.FetchError);
    t.false(idx instanceof errors.ConfigError);
    t.true(new errors.RxtrainError('E_DATA', 'x') instanceof bundled.RxtrainError);
    t.false(new Error('x') instanceof errors.RxtrainError);
    t.false((null as unknown as object) instanceof errors.RxtrainError);
  },
);

test('the build catches an RxtrainError class that esbuild renamed, and the bundle has none', (t) => {
  const ours = 'var RxtrainError=class extends Error{},ConfigError=class extends RxtrainError{};';
  t.deepEqual(renamedErrorClasses(ours), []);
  // Another package's class of the same name may be renamed: it is not rxtrain's.
  t.deepEqual(
    renamedErrorClasses(
      `${ours}var FetchBaseError=class extends Error{},FetchError2=class extends FetchBaseError{};`,
    ),
    [],
  );
  t.deepEqual(renamedErrorClasses(`${ours}var FetchError2=class extends RxtrainError{};`), ['FetchError2']);
  t.deepEqual(renamedErrorClasses(`${ours}class IdxError3 extends ConfigError{}`), ['IdxError3']);
  t.deepEqual(renamedErrorClasses('var RxtrainError2=class extends Error{};'), ['RxtrainError2']);
  const files = readdirSync(join(ROOT, OUT)).filter((f) => /\.c?js$/.test(f));
  for (const file of files)
    t.deepEqual(renamedErrorClasses(readFileSync(join(ROOT, OUT, file), 'utf8')), [], file);
  // The check reads the bundle's own way of declaring them.
  t.regex(readFileSync(join(ROOT, OUT, 'run.cjs'), 'utf8'), /ConfigError=class extends RxtrainError/);
});

test.serial('zod is not in the run bundle: it is lent from zod.cjs when something first validates', (t) => {
  const run = readFileSync(join(ROOT, OUT, 'run.cjs'), 'utf8');
  t.false(/\bZodType\b|init_zod\(/.test(run), 'no zod code in run.cjs');
  t.regex(run, /Symbol\.for\("rxtrain\.zod"\)/, 'it asks for the lent copy');
  const zod = loadCached<{ z: { string(): { parse(v: unknown): unknown } } }>(
    join(ROOT, OUT, 'zod.cjs'),
    join(dir, 'zod.v8cache'),
  );
  t.is(zod.exports.z.string().parse('x'), 'x');
});
