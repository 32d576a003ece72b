import test from 'ava';
import { killAndResumeSuite } from './helpers/resume.js';

test('the default experiment (1200 steps: past an epoch end; checkpoint every 100) killed at 5 random moments resumes bit-exact', async (t) => {
  await killAndResumeSuite(t, {
    runArgs: ['config/mnist-logreg.yaml', '--set', 'sgd.steps=1200', '--set', 'checkpoint.every=100'],
    every: 100,
    steps: 1200,
  });
});
