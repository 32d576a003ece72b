/**
 * How much memory one run may plan to hold in its buffers on this machine: half of what the
 * machine (or the cgroup the process runs in) has, leaving the rest to the runtime, the operating
 * system and other work. Settings whose buffers would not fit are refused before anything is
 * allocated — by `validate` where the size follows from the config alone, by the stage holding the
 * buffer where it depends on the data — with a line naming the setting, instead of a run that
 * swaps, is killed, or dies in a RangeError.
 *
 * `RXTRAIN_MEMORY_BUDGET` (bytes, or with a K/M/G suffix) sets the budget outright: for machines
 * shared with other work, and for tests.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { RxtrainError } from './errors.js';
import { formatBytes } from './format.js';

export interface MemoryBudget {
  /** Bytes one run's planned buffers may take. */
  bytes: number;
  /** Where the figure comes from, as the error line says it. */
  source: string;
}

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** `RXTRAIN_MEMORY_BUDGET` parsed: `1073741824`, `512M`, `2G`; undefined when unset or malformed. */
export function parseBudget(text: string | undefined): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(text ?? '');
  return m ? Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!) : undefined;
}

/** The memory limit of this process's cgroup (v2, then v1), when there is one below the machine's. */
function cgroupLimit(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const n = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(n) && n > 0) return n;
    } catch {
      // not this cgroup version, or no limit
    }
  }
  return undefined;
}

export function memoryBudget(env: NodeJS.ProcessEnv = process.env): MemoryBudget {
  const set = parseBudget(env.RXTRAIN_MEMORY_BUDGET);
  if (set !== undefined) return { bytes: set, source: 'RXTRAIN_MEMORY_BUDGET' };
  const machine = totalmem();
  const cgroup = cgroupLimit();
  const [total, what] =
    cgroup !== undefined && cgroup < machine ? [cgroup, 'this cgroup’s limit'] : [machine, 'this machine'];
  return { bytes: Math.floor(total / 2), source: `half of ${formatBytes(total)}, ${what}` };
}

/**
 * Undefined when `bytes` fits the budget; else the sentence saying it does not, for a config
 * issue or an `E_MEMORY` error: "`what` needs 12 GB; a run may plan 11.7 GB (half of 23.4 GB,
 * this machine)".
 */
export function overBudget(what: string, bytes: number, budget = memoryBudget()): string | undefined {
  if (bytes <= budget.bytes) return undefined;
  let [need, may] = [formatBytes(bytes), formatBytes(budget.bytes)];
  // Never "needs 12 GB; may plan 12 GB": exact figures when the rounded ones agree.
  if (need === may) [need, may] = [`${bytes} bytes`, `${budget.bytes} bytes`];
  return `${what} needs ${need}; a run may plan ${may} (${budget.source})`;
}

/** Throw `E_MEMORY` naming `key` when `bytes` does not fit. */
export function requireMemory(key: string, what: string, bytes: number): void {
  const problem = overBudget(what, bytes);
  if (problem) throw new RxtrainError('E_MEMORY', `${key}: ${problem}; lower ${key}`);
}
