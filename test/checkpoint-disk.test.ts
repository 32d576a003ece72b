/**
 * A real full disk: the checkpoint directory of a resumed run is a 128 KiB tmpfs that fills up at
 * its next checkpoint. Needs `mount -t tmpfs` (root); elsewhere the test says so, and the injected
 * full disk of resume-corrupt.test.ts stands in for it.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { listCheckpoints, readCheckpoint } from '../src/pipeline/checkpointFile.js';
import { smallResumableRun, tempDir } from './helpers/index.js';
import { holdAfterTrain, readSummary, startCli, waitFor } from './helpers/resume.js';

// The default pipeline on a tenth of MNIST: the disk is the point, not the data.
const RUN = smallResumableRun();

function mount(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('ENOSPC on a real tmpfs: one clear line, exit 1, the previous checkpoint intact, resume exact', async (t) => {
  const root = tempDir();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cache = join(root, 'cache');
  const dir = join(root, 'run');
  const checkpoints = join(dir, 'checkpoints');
  const cli = (args: string[]) => startCli([...args, '--cache', cache, '--quiet']);

  // A run stopped after a few checkpoints: held at step 300 (past checkpoint 200), signalled there,
  // let go with 900 steps to go, so the signal always finds it training.
  const hold = holdAfterTrain(3);
  const first = startCli(['run', ...RUN, '--run-dir', dir, '--cache', cache, '--quiet'], hold.env);
  await waitFor('the run to be held at step 300', hold.held, 120_000, 20);
  first.kill('SIGINT');
  hold.release();
  t.is((await first.result).code, 130);

  // …whose checkpoint directory then moves onto a small disk: three checkpoints fill 27 of its
  // 32 pages, and the next one does not fit.
  const saved = join(root, 'saved');
  renameSync(checkpoints, saved);
  mkdirSync(checkpoints);
  if (!mount(checkpoints, '128k')) {
    t.log(
      'mount -t tmpfs is not permitted here: covered by the injected full disk in resume-corrupt.test.ts',
    );
    t.pass();
    return;
  }
  let mounted = true;
  const unmount = () => {
    if (mounted) execFileSync('umount', [checkpoints]);
    mounted = false;
  };
  t.teardown(unmount);
  cpSync(saved, checkpoints, { recursive: true });
  const before = listCheckpoints(checkpoints);

  const full = await cli(['resume', dir]).result;
  t.is(full.code, 1, full.stdout + full.stderr);
  t.regex(
    full.stderr,
    /^rxtrain: E_IO: \S+\/checkpoints\/ckpt-\d{9}\.rxckpt: cannot write \(ENOSPC: no space left on device\)\n$/,
  );
  t.like(readSummary(dir), { status: 'failed', error: { code: 'E_IO' } });
  t.deepEqual(listCheckpoints(checkpoints), before, 'the earlier checkpoints are all still there');
  t.false(
    readdirSync(checkpoints).some((f) => f.endsWith('.tmp')),
    'no torn temp file',
  );
  const previous = readCheckpoint(join(checkpoints, before[0]!));
  t.log(`${full.stderr.trim()}; newest intact checkpoint: step ${previous.meta.step}`);

  // With room again, the run resumes from it and ends where an uninterrupted one does.
  cpSync(checkpoints, saved, { recursive: true });
  unmount();
  rmSync(checkpoints, { recursive: true });
  renameSync(saved, checkpoints);
  const resumed = await cli(['resume', dir]).result;
  t.is(resumed.code, 0, resumed.stderr);
  t.is(readSummary(dir)!.resumedFrom, previous.meta.step);
  const reference = join(root, 'reference');
  t.is((await cli(['run', ...RUN, '--run-dir', reference]).result).code, 0);
  t.is(readSummary(dir)!.weightsSha256, readSummary(reference)!.weightsSha256);
});
