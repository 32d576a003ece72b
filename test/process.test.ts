/** isAlive: running processes are alive; gone ones, zombies included, are not. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import test from 'ava';
import { isAlive, procState } from '../src/util/process.js';
import { NO_SUCH_PID } from './helpers/index.js';

test('this process is alive; a pid no process has, 0 and negative pids are not', (t) => {
  t.true(isAlive(process.pid));
  t.false(isAlive(NO_SUCH_PID));
  // kill(0, …) and kill(-1, …) would address process groups and succeed.
  t.false(isAlive(0));
  t.false(isAlive(-1));
  t.false(isAlive(Number.NaN));
});

test('a killed child that its parent has not reaped yet (a zombie) is not alive', async (t) => {
  if (!existsSync('/proc/self/stat')) {
    t.pass('no /proc here: zombies cannot be told apart');
    return;
  }
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const pid = child.pid!;
  t.true(isAlive(pid), 'running');
  child.kill('SIGKILL');
  // Node reaps its children from the event loop; while this loop runs synchronously it cannot,
  // so the child stays a zombie once the kernel has finished killing it. Bounded, not timed.
  const deadline = Date.now() + 10_000;
  while (procState(pid) !== 'Z' && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }
  t.is(procState(pid), 'Z', 'the child became a zombie');
  t.notThrows(() => process.kill(pid, 0), 'a signal still reaches a zombie: kill(pid, 0) alone says alive');
  t.false(isAlive(pid));
  await exited;
  t.false(isAlive(pid), 'reaped');
});
