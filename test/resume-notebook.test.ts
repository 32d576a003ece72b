import test from 'ava';
import { killAndResumeSuite } from './helpers/resume.js';

test('the notebook experiment (batch 1, with replacement) killed at 5 random moments resumes bit-exact', async (t) => {
  await killAndResumeSuite(t, {
    // The notebook's recipe (batch 1, drawn with replacement, lr 0.02), run ten times longer: its
    // 5000 steps take a few tens of milliseconds, too short for kills to land at random moments.
    runArgs: ['config/mnist-notebook.yaml', '--set', 'sgd.steps=50000', '--set', 'checkpoint.every=2500'],
    every: 2500,
    steps: 50000,
  });
});
