/**
 * SIGKILL an experiment at five random moments — during data loading, twice mid-run, inside a
 * checkpoint write, and mid-run with its resume killed too — resume each to the end, and compare
 * every result's weightsSha256 with an uninterrupted run: the suite the resume tests run on the
 * default and notebook experiments (test/helpers/resume.ts), for any config, outside the test
 * suite's time budget.
 *
 *   npm run build && node dist/scripts/kill-resume.js config/mnist-mlp.yaml --every 200 --steps 2000
 *
 * Prints what each case did and the hashes; exits 1 if any result differs. RXTRAIN_TEST_SEED
 * fixes the kill moments.
 */
import { parseArgs } from 'node:util';
import type { ExecutionContext } from 'ava';
import { killAndResumeSuite } from '../test/helpers/resume.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { every: { type: 'string', default: '200' }, steps: { type: 'string', default: '2000' } },
});
const config = positionals[0] ?? 'config/mnist-mlp.yaml';
const every = Number(values.every);
const steps = Number(values.steps);

/** The few assertions the suite makes, checked and reported here instead of by ava. */
const failures: string[] = [];
const hashes: string[] = [];
const teardowns: (() => void)[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
};
const t = {
  log: (...parts: unknown[]) => console.log(`  ${parts.join(' ')}`),
  is: (a: unknown, b: unknown, what = '') => {
    if (typeof a === 'string' && /^[0-9a-f]{64}$/.test(a))
      hashes.push(
        `${what.replace(/, weights differ$/, '')}: ${a} ${a === b ? '=' : '≠'} uninterrupted ${String(b)}`,
      );
    check(Object.is(a, b), `${what}: ${String(a)} ≠ ${String(b)}`);
  },
  true: (v: boolean, what = '') => check(v, what),
  false: (v: boolean, what = '') => check(!v, what),
  regex: (s: string, re: RegExp, what = '') => check(re.test(s), `${what}: ${s} !~ ${re}`),
  deepEqual: (a: unknown, b: unknown, what = '') =>
    check(JSON.stringify(a) === JSON.stringify(b), `${what}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`),
  teardown: (fn: () => void) => teardowns.push(fn),
} as unknown as ExecutionContext;

console.log(`${config}: ${steps} steps, a checkpoint every ${every}; SIGKILL at five moments, then resume`);
const args = [config, '--set', `sgd.steps=${steps}`, '--set', `checkpoint.every=${every}`];
try {
  await killAndResumeSuite(t, { runArgs: args, every, steps });
} finally {
  for (const fn of teardowns) fn();
}
for (const h of hashes) console.log(h);
if (failures.length) {
  console.log(`FAILED:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('every resumed run ended with the uninterrupted run’s weightsSha256');
