/**
 * Wiring: turn a resolved config into one cold Flow. Each stage's operator is applied in order;
 * after each stage sits a bounded `edge` with the stage's capacity (the last one feeds the run's
 * final consumer), so every stage is at most its capacity ahead of the stage after it. Stages
 * report lifecycle events (started, finished) and sampled progress with their edge's depth.
 * Building does no work; subscribing does.
 */
import { Observable } from 'rxjs/internal/Observable';
import {
  beforeComplete,
  type EdgeStats,
  edge,
  edgeStats,
  emptyFlow,
  type Flow,
  mapFlow,
} from '../flow/index.js';
import { deriveSeed, Prng } from '../util/random.js';
import { Checkpoints, StageStates } from './checkpoints.js';
import type { ExperimentConfig, ResolvedStage } from './config.js';
import type { Clock, EventBus } from './events.js';
import { type Message, messageBytes } from './messages.js';
import type { StageContext } from './stage.js';
import { cachedFlow } from './stageCache.js';
import { SnapshotPlan, TrainingControl, TrainingGate } from './training.js';

export interface PipelineRuntime {
  events: EventBus;
  clock: Clock;
  cacheDir: string;
  stopSignal: AbortSignal;
  /** Max ms of CPU-bound work between yields to the event loop. */
  sliceMs: number;
  /** Stage states by id, when resuming from a checkpoint. */
  restored?: Record<string, unknown>;
  /**
   * Told of every item entering (`in`) and leaving (`out`) each stage's edge, counted outside the
   * edge itself: backpressure tests and diagnostics. Off (no wrapping) when absent.
   */
  probe?: (stage: string, event: 'in' | 'out') => void;
  /** No network: remote sources come from the download cache or fail (E_OFFLINE). */
  offline?: boolean;
  /** Where the data stages' output is cached (stageCache.ts); absent: never cached. */
  stageCacheDir?: string;
}

export interface StageHandle {
  id: string;
  type: string;
  /** Position in the pipeline, from 0. */
  index: number;
  capacity: ResolvedStage['capacity'];
  /** The edge after this stage. */
  edge: EdgeStats;
  counters: Record<string, unknown>;
  dirty: boolean;
  /** Edge counters at the last progress event, to report edges that moved since. */
  reported: { emitted: number; consumed: number };
  startedAt?: number;
  durationMs?: number;
  items: number;
}

export interface Pipeline {
  flow: Flow<Message>;
  stages: StageHandle[];
  /** Emit a progress event for every stage whose counters changed since the last call. */
  sampleProgress(): void;
  /** One line per stage: `fetch -> untar -> …` with edge capacities. */
  summary(): string;
  /** The run's checkpoint policy and the stages' states: the sink writes barriers through it. */
  checkpoints: Checkpoints;
  /** A model producer has started training: a stop signal now ends with a checkpoint. */
  readonly trainingBegun: boolean;
  /** Clock time at which the data stages' output was complete (computed or replayed). */
  readonly dataReadyAt: number | undefined;
}

/**
 * The data stages: the source and the pure stages right after it (decoders, feature transforms).
 * Their output can be cached and replayed; their end is when the data is ready; `inspect` and the
 * report run them alone to read examples. Returns how many there are.
 */
export function dataStageCount(stages: readonly ResolvedStage[]): number {
  if (stages.length === 0) return 0;
  let n = 1;
  while (n < stages.length && stages[n]!.definition.pure) n++;
  return n;
}

/** The config cut after its data stages. */
export function dataStagesOnly(config: ExperimentConfig): ExperimentConfig {
  return { ...config, stages: config.stages.slice(0, dataStageCount(config.stages)) };
}

export function buildPipeline(config: ExperimentConfig, runtime: PipelineRuntime): Pipeline {
  const plan = new SnapshotPlan(
    config.stages.map((s) => s.definition.snapshots?.(s.settings)).filter((r) => r !== undefined),
  );
  const states = new StageStates(config.stages, runtime.restored);
  const checkpoints = new Checkpoints(config.checkpoint, runtime.clock, runtime.stopSignal, states);
  const control = new TrainingControl();

  const handles: StageHandle[] = [];
  const contexts: StageContext[] = [];
  const dataStages = dataStageCount(config.stages);
  let dataReadyAt: number | undefined;
  let trainingBegun = false;
  let flow: Flow<Message> = emptyFlow;
  for (const [index, stage] of config.stages.entries()) {
    const handle: StageHandle = {
      id: stage.id,
      type: stage.type,
      index,
      capacity: stage.capacity,
      edge: edgeStats(),
      counters: {},
      dirty: false,
      reported: { emitted: 0, consumed: 0 },
      items: 0,
    };
    handles.push(handle);
    const ctx: StageContext = {
      id: stage.id,
      type: stage.type,
      baseDir: config.baseDir,
      cacheDir: runtime.cacheDir,
      offline: runtime.offline,
      clock: runtime.clock,
      events: runtime.events,
      rng: (seed) => new Prng(seed ?? deriveSeed(config.seed, stage.id)),
      progress: (counters) => {
        Object.assign(handle.counters, counters);
        handle.dirty = true;
      },
      state: (handlers) => states.register(stage.id, handlers),
      stopSignal: runtime.stopSignal,
      sliceMs: runtime.sliceMs,
      samplesHandedOver:
        config.stages.slice(0, index).every((s) => s.definition.keepsNoInput === true) &&
        config.stages[index + 1]?.definition.takesSampleTables === true,
      training: new TrainingGate({
        origin: stage.id,
        plan,
        control,
        checkpoints,
        clock: runtime.clock,
        sliceMs: runtime.sliceMs,
        onBegin: () => {
          trainingBegun = true;
        },
      }),
    };
    const operator = stage.definition.create(stage.settings, ctx);
    // A checkpoint barrier reaching this stage records its state before the stage sees it.
    const input = index > 0 && stage.definition.state ? tapBarriers(flow, stage.id) : flow;
    let output = instrument(operator(input), handle, runtime);
    if (index === dataStages - 1) {
      output = beforeComplete(
        dataStages >= 2 && config.stages[0]!.definition.fingerprint && runtime.stageCacheDir
          ? withStageCache(output, config.stages.slice(0, dataStages), runtime.stageCacheDir)
          : output,
        () => {
          dataReadyAt = runtime.clock.now();
        },
      );
    }
    const probe = runtime.probe;
    const into = probe ? tap(output, () => probe(stage.id, 'in')) : output;
    const buffered = edge(into, stage.capacity, handle.edge, messageBytes);
    flow = probe ? tap(buffered, () => probe(stage.id, 'out')) : buffered;
    contexts.push(ctx);
  }

  const progressEvent = (h: StageHandle) => {
    h.dirty = false;
    h.reported = { emitted: h.edge.emitted, consumed: h.edge.consumed };
    runtime.events.emit({
      type: 'stage-progress',
      stage: h.id,
      ...h.counters,
      edge: {
        depth: h.edge.depth,
        capacity: h.capacity.items,
        maxDepth: h.edge.maxDepth,
        bytes: h.edge.bytes,
        ...(h.capacity.bytes !== undefined
          ? { capacityBytes: h.capacity.bytes, maxBytes: h.edge.maxBytes }
          : {}),
        emitted: h.edge.emitted,
        consumed: h.edge.consumed,
      },
    });
  };
  const edgeMoved = (h: StageHandle) =>
    h.edge.emitted !== h.reported.emitted || h.edge.consumed !== h.reported.consumed;

  return {
    flow,
    stages: handles,
    checkpoints,
    sampleProgress: () => {
      for (const h of handles) if (h.dirty || edgeMoved(h)) progressEvent(h);
    },
    summary: () =>
      handles
        .map((h) => `${h.id === h.type ? h.id : `${h.id}(${h.type})`}[${capacityText(h.capacity)}]`)
        .join(' -> '),
    get dataReadyAt() {
      return dataReadyAt;
    },
    get trainingBegun() {
      return trainingBegun;
    },
  };

  function tapBarriers(inner: Flow<Message>, id: string): Flow<Message> {
    return mapFlow(inner, (item) => {
      if (item.kind === 'checkpoint') checkpoints.arrive(id, item);
      return item;
    });
  }

  /** Pass items through unchanged, telling `seen` of each. */
  function tap(inner: Flow<Message>, seen: () => void): Flow<Message> {
    return mapFlow(inner, (item) => {
      seen();
      return item;
    });
  }

  /** The data stages' output behind the cache; on a replay their handles report it. */
  function withStageCache(compute: Flow<Message>, stages: ResolvedStage[], dir: string): Flow<Message> {
    const source = stages[0]!;
    const replaced = handles.slice(0, stages.length);
    return cachedFlow(compute, {
      dir,
      stages: stages.map((s) => ({ id: s.id, type: s.type, settings: s.settings })),
      fingerprint: async (onlyIfKnown) =>
        source.definition.fingerprint!(source.settings, contexts[0]!, { onlyIfKnown }),
      worthCaching: async () => {
        for (const [i, s] of stages.entries()) {
          const worth = s.definition.worthCaching;
          if (!worth || (await worth(s.settings, contexts[i]!))) return true;
        }
        return false;
      },
      events: runtime.events,
      onReplay: (phase, messages) => {
        for (const h of replaced) {
          if (phase === 'start') {
            h.startedAt = runtime.clock.now();
            runtime.events.emit({ type: 'stage-started', stage: h.id, stageType: h.type, index: h.index });
            continue;
          }
          h.durationMs = runtime.clock.now() - h.startedAt!;
          if (h === replaced.at(-1)) h.items = messages;
          runtime.events.emit({
            type: 'stage-finished',
            stage: h.id,
            durationMs: Math.round(h.durationMs),
            items: h.items,
            cached: true,
          });
        }
      },
    });
  }

  function instrument(inner: Flow<Message>, handle: StageHandle, rt: PipelineRuntime): Flow<Message> {
    return (requests) =>
      new Observable<Message>((subscriber) => {
        handle.startedAt = rt.clock.now();
        rt.events.emit({
          type: 'stage-started',
          stage: handle.id,
          stageType: handle.type,
          index: handle.index,
        });
        let settled = false;
        const finished = (stopped: boolean) => {
          settled = true;
          handle.durationMs = rt.clock.now() - handle.startedAt!;
          if (handle.dirty) progressEvent(handle);
          rt.events.emit({
            type: 'stage-finished',
            stage: handle.id,
            durationMs: Math.round(handle.durationMs),
            items: handle.items,
            ...(stopped ? { stopped } : {}),
          });
        };
        const sub = inner(requests).subscribe({
          next: (item) => {
            // Items are the stage's own messages; a checkpoint barrier passing through is not one.
            if (item.kind !== 'checkpoint') handle.items++;
            subscriber.next(item);
          },
          error: (error) => {
            settled = true;
            subscriber.error(error);
          },
          complete: () => {
            finished(false);
            subscriber.complete();
          },
        });
        return () => {
          sub.unsubscribe();
          // Stopped by downstream (an endless sampler once training has ended).
          if (!settled) finished(true);
        };
      });
  }
}

/** `8` or `8, 4 MiB`: an edge capacity as the pipeline summary shows it. */
function capacityText(capacity: ResolvedStage['capacity']): string {
  if (capacity.bytes === undefined) return String(capacity.items);
  const mib = capacity.bytes / (1024 * 1024);
  return `${capacity.items}, ${mib >= 1 ? `${Number(mib.toFixed(1))} MiB` : `${capacity.bytes} B`}`;
}
