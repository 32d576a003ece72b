/**
 * Whether a process still runs, for judging what a process left behind (a lock file, a temporary
 * file) by the pid written into it.
 */
import { readFileSync } from 'node:fs';

/**
 * Is a process with this id running (ours or another user's)?
 *
 * `kill(pid, 0)` alone answers yes for a zombie: a process that has exited but whose parent has
 * not collected its exit status yet. Such a process will never release what it holds, so where
 * Linux's /proc tells us its state, Z (zombie) and X (dead) count as gone. Where /proc is absent
 * or hides the process (another user's, under `hidepid`), the signal test decides.
 */
export function isAlive(pid: number): boolean {
  // kill(0, …) and kill(-n, …) address process groups, not one process.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const state = procState(pid);
  if (state !== undefined) return state !== 'Z' && state !== 'X';
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The one-letter state in `/proc/<pid>/stat` (R, S, D, Z, …), or undefined when it cannot be read.
 * The state follows the command name, which is in parentheses and may itself hold spaces and
 * parentheses: it is the field after the last `)`.
 */
export function procState(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return /^\s*(\S)/.exec(stat.slice(stat.lastIndexOf(')') + 1))?.[1];
}
