/**
 * Resuming a run in its own directory: load the config it was started with, check that it is
 * unchanged, find the newest checkpoint that verifies (setting aside newer ones that do not), and
 * continue from it — or from the beginning when there is none. A finished run is not run again.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RxtrainError } from '../util/errors.js';
import { loadLatestCheckpoint, setAsideInvalid } from './checkpointFile.js';
import { StageStates } from './checkpoints.js';
import { loadConfig } from './config.js';
import { type RunOptions, type RunSummary, runExperiment } from './run.js';
import { configHash, lockRunDir, moduleDigests, type RunRecord } from './runDir.js';
import type { StageDefinition } from './stage.js';

export interface ResumeOptions extends Omit<RunOptions, 'config' | 'runDir' | 'runsDir' | 'resume'> {
  /** The stage definitions the config may name (builtinStages; user modules are in the config). */
  stages: readonly StageDefinition[];
}

/** The run's summary; `alreadyCompleted` when it had finished and nothing was run. */
export type ResumeResult = RunSummary & { alreadyCompleted?: boolean };

export async function resumeExperiment(runDir: string, options: ResumeOptions): Promise<ResumeResult> {
  const dir = resolve(runDir);
  const configFile = join(dir, 'config.yaml');
  if (!existsSync(configFile)) {
    throw new RxtrainError('E_USAGE', `${dir}: not a run directory (no config.yaml); nothing to resume`);
  }
  const previous = readJson<RunSummary>(join(dir, 'summary.json'));
  if (previous?.status === 'completed') return { ...previous, alreadyCompleted: true };

  const record = readJson<RunRecord>(join(dir, 'run.json'));
  const loaded = await loadConfig(configFile, { stages: options.stages });
  // Relative paths in the config resolve where the original config file was, not in the run dir.
  const config = { ...loaded, baseDir: record?.baseDir ?? loaded.baseDir };
  const hash = configHash(config);
  if (record && record.configHash !== hash) {
    throw new RxtrainError(
      'E_RESUME',
      `${configFile}: the config differs from the one the run started with (hash ${hash.slice(0, 12)}, recorded ${record.configHash.slice(0, 12)}); restore it, or start a new run`,
    );
  }

  const { checkpoint, invalid } = loadLatestCheckpoint(join(dir, 'checkpoints'));
  if (checkpoint && checkpoint.meta.configHash !== hash) {
    throw new RxtrainError(
      'E_RESUME',
      `${checkpoint.file}: taken under a different config (hash ${checkpoint.meta.configHash.slice(0, 12)}, config.yaml has ${hash.slice(0, 12)}); it cannot be resumed with this one`,
    );
  }
  // The stage modules the checkpoint was taken with (their code decides what resuming does).
  const taken = checkpoint?.meta.depends?.modules;
  if (checkpoint && taken && !options.allowChangedData) {
    const now = moduleDigests(config);
    const changed = [...new Set([...Object.keys(taken), ...Object.keys(now)])].filter(
      (m) => taken[m] !== now[m],
    );
    if (changed.length > 0) {
      throw new RxtrainError(
        'E_RESUME',
        `${changed.join(', ')}: the stage module${changed.length > 1 ? 's' : ''} changed since ${checkpoint.file} was taken; restore ${changed.length > 1 ? 'them' : 'it'}, or pass --allow-changed-data`,
      );
    }
  }
  // Every stateful stage's state present and fitting its schema, before anything changes.
  if (checkpoint) new StageStates(config.stages, checkpoint.states);

  // From here on the directory changes: no other process may be writing it. The run goes on under
  // the same lock.
  const lock = lockRunDir(dir);
  try {
    // Newer files that fail to verify are out of the run's history from here on.
    for (const bad of invalid) setAsideInvalid(bad.file);
    // Outputs of the attempt being replaced; the resumed attempt writes its own.
    for (const name of ['summary.json', 'weights.f32', 'model.json'])
      rmSync(join(dir, name), { force: true });
    return await runExperiment({
      ...options,
      config,
      runDir: dir,
      lock,
      resume: { checkpoint, invalid: invalid.map((i) => ({ file: i.file, message: i.error.message })) },
    });
  } finally {
    lock.release();
  }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
