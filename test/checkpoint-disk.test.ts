/**
 * A real full disk: the run directory on a 128 KiB tmpfs fills up while a checkpoint is written.
 * Needs `mount -t tmpfs` (root); elsewhere it says so and resume-corrupt.test.ts's injected full
 * disk stands in for it.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { listCheckpoints, readCheckpoint } from '../src/pipeline/checkpoint.js';
import { tempDir } from './helpers/index.js';
import { readSummary, startCli } from './helpers/resume.js';

const RUN = ['config/mnist-logreg.yaml', '--set', 'sgd.steps=1200', '--set', 'checkpoint.every=100'];

function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('ENOSPC on a real tmpfs: one clear line, exit 1, the previous checkpoint intact, resume exact', async (t) => {
  const root = tempDir();
  const disk = join(root, 'disk');
  const cache = join(root, 'cache');
  mkdirSync(disk);
  if (!mountTmpfs(disk, '128k')) {
    t.log(
      'mount -t tmpfs is not permitted here: covered by the injected full disk in resume-corrupt.test.ts',
    );
    rmSync(root, { recursive: true, force: true });
    t.pass();
    return;
  }
  t.teardown(() => {
    execFileSync('umount', [disk]);
    rmSync(root, { recursive: true, force: true });
  });
  const dir = join(disk, 'run');
  const result = await startCli(['run', ...RUN, '--run-dir', dir, '--cache', cache, '--quiet']).result;
  t.is(result.code, 1, result.stdout + result.stderr);
  t.regex(
    result.stderr,
    /^rxtrain: E_IO: \S+\/checkpoints\/ckpt-\d{9}\.rxckpt: cannot write \(ENOSPC: no space left on device\)\n$/,
  );
  const failedStep = Number(/ckpt-(\d+)/.exec(result.stderr)![1]);
  const files = listCheckpoints(join(dir, 'checkpoints'));
  t.true(files.length > 0, 'earlier checkpoints fitted');
  t.false(
    readdirSync(join(dir, 'checkpoints')).some((f) => f.endsWith('.tmp')),
    'no torn temp file',
  );
  for (const f of files) t.true(readCheckpoint(join(dir, 'checkpoints', f)).meta.step < failedStep);
  const previous = readCheckpoint(join(dir, 'checkpoints', files[0]!));
  t.log(`disk full at checkpoint ${failedStep}; newest intact: ${previous.meta.step}`);

  // With room again (a copy on the real disk), the run resumes from it and ends where an
  // uninterrupted one does.
  const moved = join(root, 'moved');
  cpSync(dir, moved, { recursive: true });
  const resumed = await startCli(['resume', moved, '--cache', cache, '--quiet']).result;
  t.is(resumed.code, 0, resumed.stderr);
  t.is(readSummary(moved)!.resumedFrom, previous.meta.step);
  const reference = join(root, 'reference');
  await startCli(['run', ...RUN, '--run-dir', reference, '--cache', cache, '--quiet']).result;
  t.is(readSummary(moved)!.weightsSha256, readSummary(reference)!.weightsSha256);
});
