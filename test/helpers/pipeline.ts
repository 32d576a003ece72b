/** Running a config's pipeline in-process, as the run's sink would, for stage-level tests. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consume } from '../../src/flow/index.js';
import { buildPipeline, type PipelineRuntime } from '../../src/pipeline/compose.js';
import { type ExperimentConfig, loadConfig } from '../../src/pipeline/config.js';
import { EventBus, type RxtrainEvent, systemClock } from '../../src/pipeline/events.js';
import type { CheckpointBarrier, ModelSnapshot } from '../../src/pipeline/messages.js';
import { builtinStages } from '../../src/stages/index.js';
import { tempDir } from './index.js';

export interface Captured {
  final: ModelSnapshot;
  checkpoints: { step: number; states: Record<string, unknown>; weights: Float32Array }[];
  events: RxtrainEvent[];
}

/**
 * A config's pipeline with a fresh cache directory and every event it emits captured; `runtime`
 * replaces any of the defaults (a probe, a slice length, restored states).
 */
export function testPipeline(config: ExperimentConfig, runtime: Partial<PipelineRuntime> = {}) {
  const bus = new EventBus(systemClock);
  const events: RxtrainEvent[] = [];
  bus.on((e) => events.push(e));
  const pipeline = buildPipeline(config, {
    events: bus,
    clock: systemClock,
    cacheDir: tempDir(),
    stopSignal: new AbortController().signal,
    sliceMs: 25,
    ...runtime,
  });
  return { pipeline, events };
}

/** Run a config's pipeline to the end, settling checkpoint barriers as a run's sink would. */
export async function runPipeline(yaml: string, restored?: Record<string, unknown>): Promise<Captured> {
  const file = join(tempDir(), 'experiment.yaml');
  writeFileSync(file, yaml);
  const config = await loadConfig(file, { stages: builtinStages });
  const { pipeline, events: seen } = testPipeline(config, { restored });
  let final: ModelSnapshot | undefined;
  const checkpoints: Captured['checkpoints'] = [];
  const capture = (b: CheckpointBarrier) => {
    checkpoints.push({ step: b.model.step, states: b.states, weights: b.model.weights });
    b.settle();
  };
  // The run's sink, less the files: barriers as they come, the final checkpoint at the end.
  await consume(pipeline.flow, (m) => {
    if (m.kind === 'checkpoint') capture(m);
    if (m.kind !== 'snapshot' || !m.final) return;
    final = m;
    const barrier = pipeline.checkpoints.atEnd(m);
    if (barrier) capture(barrier);
  }).done;
  return { final: final!, checkpoints, events: seen };
}

/** An MNIST experiment from the embedded copy: the data stages, then the given YAML for the rest. */
export function mnistExperiment(head: string, shuffle: string, rest: string): string {
  return `${head}
stages:
  - type: fetch
  - type: untar
  - type: decodeIdx
  - type: normalise
  - type: shuffle
${shuffle}
${rest}
`;
}
