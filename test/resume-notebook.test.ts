import test from 'ava';
import { killAndResumeSuite } from './helpers/resume.js';

test('the notebook experiment (batch 1, with replacement) killed at 5 random moments resumes bit-exact', async (t) => {
  await killAndResumeSuite(t, {
    runArgs: ['config/mnist-notebook.yaml', '--set', 'checkpoint.every=250'],
    every: 250,
    steps: 5000,
  });
});
