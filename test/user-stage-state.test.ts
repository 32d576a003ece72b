/**
 * A user stage with state, written against the documented contract (examples/running-count-stage.js:
 * a `state` schema and `ctx.state({ snapshot, restore })`), is checkpointed and resumed exactly,
 * with no pipeline code knowing it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { listCheckpoints, readCheckpoint } from '../src/pipeline/checkpointFile.js';
import { loadConfig } from '../src/pipeline/config.js';
import { resumeExperiment } from '../src/pipeline/resume.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, tempDir } from './helpers/index.js';

const CONFIG = join(ROOT, 'examples/mnist-running-count.yaml');

function finalState(runDir: string): unknown {
  const dir = join(runDir, 'checkpoints');
  const files = listCheckpoints(dir);
  const last = readCheckpoint(join(dir, files[0]!));
  if (!last.meta.final) throw new Error(`${last.file} is not the final checkpoint`);
  return last.states['runningCount'];
}

test('a stateful user stage is checkpointed at a barrier and restored exactly on resume', async (t) => {
  const root = tempDir();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cacheDir = join(root, 'cache');
  const config = await loadConfig(CONFIG, { stages: builtinStages });

  // Uninterrupted.
  const whole = await runExperiment({ config, runDir: join(root, 'whole'), cacheDir });
  t.is(whole.status, 'completed');
  const reference = finalState(whole.runDir) as { snapshots: number; best: number | null };
  // One snapshot at each evaluation (every 50 of 252 steps, and the final one): the count is real.
  t.true(reference.snapshots >= 5, `counted ${reference.snapshots} snapshots`);

  // Stopped by a signal once the checkpoint of step 200 is written, then resumed.
  const stop = new AbortController();
  const dir = join(root, 'stopped');
  const stopped = await runExperiment({
    config,
    runDir: dir,
    cacheDir,
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'checkpoint' && e.step >= 200) stop.abort('SIGINT');
    },
  });
  t.is(stopped.status, 'interrupted');
  const atStop = readCheckpoint(join(dir, 'checkpoints', listCheckpoints(join(dir, 'checkpoints'))[0]!));
  const stateAtStop = atStop.states['runningCount'] as { snapshots: number };
  t.true(stateAtStop.snapshots > 0 && stateAtStop.snapshots < reference.snapshots, 'stopped part-way');

  const resumed = await resumeExperiment(dir, { stages: builtinStages, cacheDir });
  t.is(resumed.status, 'completed');
  t.is(resumed.resumedFrom, atStop.meta.step);
  t.deepEqual(finalState(dir), reference, 'the same count as the uninterrupted run');
  t.is(resumed.weightsSha256, whole.weightsSha256);
});

test('a restored state that does not fit the stage schema stops the resume with E_RESUME', async (t) => {
  const { StageStates } = await import('../src/pipeline/checkpoints.js');
  const config = await loadConfig(CONFIG, { stages: builtinStages });
  const runningCount = config.stages.find((s) => s.type === 'runningCount')!;
  const error = t.throws(
    () => new StageStates([runningCount], { [runningCount.id]: { snapshots: 'many', best: null } }),
  );
  t.is((error as { code?: string }).code, 'E_RESUME');
  t.regex(
    error!.message,
    /stage "runningCount" \(runningCount\): the checkpoint's state does not fit it at snapshots/,
  );
});
