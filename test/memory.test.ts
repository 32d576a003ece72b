/** The memory budget: parsed from RXTRAIN_MEMORY_BUDGET, else half the machine; refusals say both figures. */
import { totalmem } from 'node:os';
import test from 'ava';
import { memoryBudget, overBudget, parseBudget } from '../src/util/memory.js';

test('RXTRAIN_MEMORY_BUDGET takes bytes or a K/M/G/T suffix; anything else is ignored', (t) => {
  t.is(parseBudget('1048576'), 1048576);
  t.is(parseBudget('512M'), 512 * 2 ** 20);
  t.is(parseBudget('2G'), 2 * 2 ** 30);
  t.is(parseBudget('1.5GiB'), 1.5 * 2 ** 30);
  t.is(parseBudget('lots'), undefined);
  t.is(parseBudget(undefined), undefined);
  t.deepEqual(memoryBudget({ RXTRAIN_MEMORY_BUDGET: '3G' }), {
    bytes: 3 * 2 ** 30,
    source: 'RXTRAIN_MEMORY_BUDGET',
  });
  t.true(memoryBudget({}).bytes <= totalmem() / 2);
});

test('over budget: both figures, exact when the rounded ones would read the same', (t) => {
  const budget = { bytes: 2 ** 30, source: 'a test' };
  t.is(overBudget('x', 2 ** 30, budget), undefined);
  t.is(overBudget('x', 3 * 2 ** 30, budget), 'x needs 3.0 GB; a run may plan 1.0 GB (a test)');
  t.is(
    overBudget('x', 2 ** 30 + 1, budget),
    `x needs ${2 ** 30 + 1} bytes; a run may plan ${2 ** 30} bytes (a test)`,
  );
});
