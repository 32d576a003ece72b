/**
 * tryLockNow: takes a free or abandoned lock, names a live holder without waiting, and of many
 * processes taking over one abandoned lock at once exactly one wins.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import test from 'ava';
import { FileLock, type LockHolder, readHolder, tryLockNow } from '../src/util/fileLock.js';
import { procState } from '../src/util/process.js';
import { NO_SUCH_PID, tempDir } from './helpers/index.js';

const FILE_LOCK_MODULE = new URL('../src/util/fileLock.js', import.meta.url).href;

function writeLock(path: string, holder: LockHolder): void {
  writeFileSync(path, JSON.stringify(holder));
}

test('a free lock is taken, and released', (t) => {
  const path = join(tempDir(), 'run.lock');
  const lock = tryLockNow(path);
  if (!(lock instanceof FileLock)) return t.fail(`busy: ${JSON.stringify(lock)}`);
  t.deepEqual(readHolder(path), lock.holder);
  t.is(lock.holder.pid, process.pid);
  lock.release();
  t.false(existsSync(path));
});

test('a lock this process holds through another FileLock is busy, and left as it was', (t) => {
  const path = join(tempDir(), 'run.lock');
  const first = tryLockNow(path);
  if (!(first instanceof FileLock)) return t.fail('not taken');
  const second = tryLockNow(path);
  t.false(second instanceof FileLock);
  t.deepEqual(second, { heldBy: first.holder });
  t.is(readHolder(path)?.token, first.holder.token);
  first.release();
});

test('a lock whose holder on this host is gone is taken over at once', (t) => {
  const path = join(tempDir(), 'run.lock');
  writeLock(path, { host: hostname(), pid: NO_SUCH_PID, token: 'dead' });
  const lock = tryLockNow(path);
  if (!(lock instanceof FileLock)) return t.fail(`busy: ${JSON.stringify(lock)}`);
  t.is(readHolder(path)?.token, lock.holder.token);
  lock.release();
});

test('a lock whose holder is a zombie (killed, not yet reaped) is taken over', async (t) => {
  if (!existsSync('/proc/self/stat')) {
    t.pass('no /proc here: zombies cannot be told apart');
    return;
  }
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const pid = child.pid!;
  const path = join(tempDir(), 'run.lock');
  writeLock(path, { host: hostname(), pid, token: 'zombie' });
  t.deepEqual(tryLockNow(path), { heldBy: { host: hostname(), pid, token: 'zombie' } }, 'running: busy');
  child.kill('SIGKILL');
  // No await until the check: Node reaps children from its event loop, so the child stays a zombie.
  const deadline = Date.now() + 10_000;
  while (procState(pid) !== 'Z' && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }
  t.is(procState(pid), 'Z');
  const lock = tryLockNow(path);
  t.true(lock instanceof FileLock);
  (lock as FileLock).release();
  await exited;
});

test("another host's lock is busy while it is touched, and taken over once untouched for staleMs", (t) => {
  const path = join(tempDir(), 'run.lock');
  const elsewhere = { host: `not-${hostname()}`, pid: 1, token: 'remote' };
  writeLock(path, elsewhere);
  t.deepEqual(tryLockNow(path, { staleMs: 60_000 }), { heldBy: elsewhere });
  const old = new Date(Date.now() - 120_000);
  utimesSync(path, old, old);
  const lock = tryLockNow(path, { staleMs: 60_000 });
  t.true(lock instanceof FileLock);
  (lock as FileLock).release();
});

/** A process that runs `tryLockNow(<dir>/<line>.lock)` for each line it reads, and answers. */
const CONTENDER = `
import { createInterface } from 'node:readline';
import { FileLock, tryLockNow } from ${JSON.stringify(FILE_LOCK_MODULE)};
const held = [];
const lines = createInterface({ input: process.stdin });
lines.on('line', (name) => {
  const result = tryLockNow(process.argv[1] + '/' + name + '.lock');
  if (result instanceof FileLock) held.push(result);
  process.stdout.write(name + ' ' + (result instanceof FileLock ? 'won' : 'lost') + '\\n');
});
lines.on('close', () => held.forEach((lock) => lock.release()));
process.stdout.write('ready\\n');
`;

test('several processes taking over one abandoned lock at once: exactly one wins, every round', async (t) => {
  const dir = tempDir();
  const children = Array.from({ length: 4 }, () =>
    spawn(process.execPath, ['--input-type=module', '-e', CONTENDER, dir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const answers = children.map((child) => createInterface({ input: child.stdout })[Symbol.asyncIterator]());
  const next = async (i: number) => (await answers[i]!.next()).value as string;
  for (let i = 0; i < children.length; i++) t.is(await next(i), 'ready');
  const rounds = 20;
  for (let round = 0; round < rounds; round++) {
    const path = join(dir, `${round}.lock`);
    writeLock(path, { host: hostname(), pid: NO_SUCH_PID, token: `dead-${round}` });
    for (const child of children) child.stdin.write(`${round}\n`);
    const results = await Promise.all(children.map((_, i) => next(i)));
    const winners = children.filter((_, i) => results[i] === `${round} won`);
    t.is(winners.length, 1, `round ${round}: ${results.join(', ')}`);
    t.is(readHolder(path)?.pid, winners[0]?.pid, 'the lock file names the winner');
  }
  await Promise.all(children.map((child) => endAndWait(child)));
  // Every winner released its lock on the way out; no guard or moved-aside file is left.
  for (let round = 0; round < rounds; round++) t.false(existsSync(join(dir, `${round}.lock`)));
});

async function endAndWait(child: ChildProcessByStdio<Writable, Readable, null>): Promise<void> {
  const exited = once(child, 'exit');
  child.stdin.end();
  child.stdout.resume();
  await exited;
}

test('a held lock does not keep its process alive; the lock it leaves is taken over', async (t) => {
  const path = join(tempDir(), 'run.lock');
  const holder = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { tryLockNow } from ${JSON.stringify(FILE_LOCK_MODULE)};
       const lock = tryLockNow(process.argv[1], { staleMs: 200 });
       process.stdout.write(JSON.stringify(lock.holder));`,
      path,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  holder.stdout.on('data', (chunk) => (out += chunk));
  // Its heartbeat fires every 50 ms; were the timer not unref'd, this would wait for the test timeout.
  const [code] = await once(holder, 'exit');
  t.is(code, 0);
  const left = JSON.parse(out) as LockHolder;
  t.is(left.pid, holder.pid!);
  t.deepEqual(readHolder(path), left, 'never released');
  const lock = tryLockNow(path);
  t.true(lock instanceof FileLock, 'its process is gone');
  (lock as FileLock).release();
});
