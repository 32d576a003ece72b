/** Fixtures for the sweep tests: a tiny synthetic dataset and sweep files over it. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_SYNTH, writeSynthDataset } from '../../src/formats/synth.js';
import { parseEvents, type RxtrainEvent } from '../../src/pipeline/events.js';
import { parseSweepEvents, type SweepEvent } from '../../src/sweep/sweepEvents.js';
import type { SweepState } from '../../src/sweep/sweepState.js';

/** 600 training and 200 test images of 28×28: decoded in milliseconds, learnable in a few steps. */
export async function tinyData(dir: string): Promise<string> {
  await writeSynthDataset(dir, { ...DEFAULT_SYNTH, train: 600, test: 200, seed: 5 });
  return dir;
}

/** The experiment every test sweep varies: a validation holdout, `steps` updates of batch 10. */
export function tinyBase(data: string, steps: number): Record<string, unknown> {
  return {
    name: 'tiny',
    checkpoint: { every: 100 },
    stages: [
      { type: 'fetch', url: data },
      { type: 'untar' },
      { type: 'decodeIdx' },
      { type: 'normalise' },
      { type: 'shuffle', holdout: { size: 100 } },
      { type: 'sgd', batchSize: 10, lr: 0.1, steps, epochs: 1000 },
      { type: 'evaluate', every: 100, splits: ['val', 'test'] },
    ],
  };
}

/** Write a sweep file with an inline base; returns its path. */
export function writeSweep(dir: string, name: string, sweep: Record<string, unknown>): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify({ name, ...sweep }));
  return file;
}

export function readState(sweepDir: string): SweepState | undefined {
  const path = join(sweepDir, 'sweep.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as SweepState) : undefined;
}

export function sweepEvents(sweepDir: string): SweepEvent[] {
  const path = join(sweepDir, 'events.ndjson');
  return existsSync(path) ? parseSweepEvents(readFileSync(path, 'utf8')) : [];
}

export function trialEvents(sweepDir: string, id: string): RxtrainEvent[] {
  const path = join(sweepDir, 'trials', id, 'events.ndjson');
  return existsSync(path) ? parseEvents(readFileSync(path, 'utf8')) : [];
}

export function trialIds(sweepDir: string): string[] {
  const dir = join(sweepDir, 'trials');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
