import { concatFlows, type Emitter, type Flow, transform } from '../../flow/index.js';
import type { Examples, FeatureTransform, Message } from '../../pipeline/messages.js';
import type { StageContext } from '../../pipeline/stage.js';
import { RxtrainError } from '../../util/errors.js';
import { count } from '../../util/format.js';
import { requireMemory } from '../../util/memory.js';
import { Prng } from '../../util/random.js';
import type { SamplerPosition, SamplerRestore, ShuffleSettings } from '../shuffle.js';
import { generators, holdoutSize, requireSplitSize, requireTransform, warnUnusedClasses } from './common.js';

/** buffer: a bounded window, one pass over the input per epoch. */
export function bufferSampler(
  input: Flow<Message>,
  settings: ShuffleSettings,
  ctx: StageContext,
  restored: SamplerRestore | undefined,
): Flow<Message> {
  return (requests) => {
    const { sampling: rng, holdoutSeed } = generators(settings, ctx);
    let epoch = 0;
    let skip = 0;
    if (restored) {
      const p = restored.position as Extract<SamplerPosition, { mode: 'buffer' }>;
      rng.restore(p.rng);
      epoch = p.epoch;
      skip = p.emitted + restored.skip;
    }
    function* passes(): Generator<Flow<Message>> {
      // Other splits and the holdout go on once, in the first pass read. A resumed run may be
      // about to evaluate before its resumed pass ends, when the last held-out example comes:
      // it reads one pass that only sends them on, and then samples.
      let forward = true;
      if (restored) {
        yield bufferPass(input, settings, ctx, rng, holdoutSeed, epoch, 0, { forward, sample: false });
        forward = false;
      }
      for (; ; epoch++, forward = false) {
        yield bufferPass(input, settings, ctx, rng, holdoutSeed, epoch, skip, { forward, sample: true });
        skip = 0;
      }
    }
    return concatFlows(passes())(requests);
  };
}

function bufferPass(
  input: Flow<Message>,
  settings: ShuffleSettings,
  ctx: StageContext,
  rng: Prng,
  holdoutSeed: number,
  epoch: number,
  initialSkip: number,
  /** forward: send other splits and the holdout on; sample: draw training samples. */
  { forward, sample }: { forward: boolean; sample: boolean },
): Flow<Message> {
  return transform<Message, Message>(input, () => {
    const passStart = rng.snapshot();
    const capacity = settings.bufferSize;
    const holdRng = new Prng(holdoutSeed); // same selection on every pass
    let window: Uint8Array | Float32Array | undefined;
    let windowLabels = new Int32Array(0);
    let fill = 0;
    let width = 0;
    let shape: readonly number[] = [];
    let classes = 0;
    let classNames: readonly string[] | undefined;
    let t: FeatureTransform | undefined;
    let emitted = 0;
    let skip = initialSkip;
    let splitSize = 0;
    let seen = 0;
    let heldK = 0;
    let heldCount = 0;
    let draining = false;
    /** Training labels seen, in the first pass of a fresh run: for the unused-classes warning. */
    let seenLabels: Int32Array | undefined;
    // the block being filled
    let blockData: Uint8Array | Float32Array | undefined;
    let blockLabels = new Int32Array(0);
    let blockFill = 0;
    let blockIndex = 0;

    const startBlock = () => {
      blockData =
        window instanceof Float32Array
          ? new Float32Array(settings.blockSize * width)
          : new Uint8Array(settings.blockSize * width);
      blockLabels = new Int32Array(settings.blockSize);
      blockFill = 0;
      blockIndex = emitted;
    };

    const flushBlock = (out: Emitter<Message>) => {
      if (!blockData || blockFill === 0) return;
      const transformReady = requireTransform(t, settings);
      out.push({
        kind: 'samples',
        sampler: ctx.id,
        epoch,
        position: { mode: 'buffer', epoch, emitted: blockIndex, rng: passStart } satisfies SamplerPosition,
        index: blockIndex,
        population: splitSize - heldK,
        count: blockFill,
        width,
        shape,
        data: blockFill === settings.blockSize ? blockData : blockData.slice(0, blockFill * width),
        labels: blockFill === settings.blockSize ? blockLabels : blockLabels.slice(0, blockFill),
        classes,
        ...(classNames ? { classNames } : {}),
        transform: transformReady,
      });
      blockData = undefined;
    };

    /** Emit window row j (or skip it when fast-forwarding to a restored position). */
    const emitRow = (j: number, out: Emitter<Message>) => {
      if (skip > 0) {
        skip--;
        emitted++;
        return;
      }
      if (!blockData) startBlock();
      blockData!.set(window!.subarray(j * width, (j + 1) * width) as never, blockFill * width);
      blockLabels[blockFill] = windowLabels[j]!;
      blockFill++;
      emitted++;
      if (blockFill === settings.blockSize) flushBlock(out);
    };

    const held: { labels: number[]; rows: (Uint8Array | Float32Array)[] } = { labels: [], rows: [] };

    const flushHeld = (out: Emitter<Message>, batch: Examples, force: boolean) => {
      if (held.rows.length === 0 || (!force && held.rows.length < 1024)) return;
      const n = held.rows.length;
      const data =
        batch.data instanceof Float32Array ? new Float32Array(n * width) : new Uint8Array(n * width);
      for (const [i, r] of held.rows.entries()) data.set(r as never, i * width);
      out.push({
        ...batch,
        split: settings.holdout!.split,
        start: heldCount - n,
        count: n,
        splitSize: heldK,
        data,
        labels: Int32Array.from(held.labels),
        source: `${ctx.id} holdout of ${settings.split}`,
      });
      held.rows = [];
      held.labels = [];
    };

    return {
      next(message, out) {
        if (message.kind === 'features') t = message.transform;
        if (message.kind === 'split-end' && message.split === settings.split) {
          if (forward && heldK > 0)
            out.push({ kind: 'split-end', split: settings.holdout!.split, count: heldCount });
          return;
        }
        if (message.kind !== 'examples' || message.split !== settings.split) {
          if (forward) out.push(message);
          return;
        }
        if (!window) {
          width = message.width;
          shape = message.shape;
          classes = message.classes;
          classNames = message.classNames;
          splitSize = requireSplitSize(message, settings);
          heldK = holdoutSize(settings, splitSize);
          // The window never holds more than the examples not held out: a bufferSize beyond the
          // split costs nothing, and one that cannot fit fails here, naming the setting.
          const rows = Math.max(1, Math.min(capacity, splitSize - heldK));
          const valueBytes = message.data instanceof Float32Array ? 4 : 1;
          requireMemory(
            `${ctx.id}.bufferSize`,
            `a shuffle window of ${count(rows)} examples of ${count(width)} values`,
            rows * (width * valueBytes + 4),
          );
          window = valueBytes === 4 ? new Float32Array(rows * width) : new Uint8Array(rows * width);
          windowLabels = new Int32Array(rows);
          if (forward && sample) seenLabels = new Int32Array(classes);
        }
        for (let r = 0; r < message.count; r++) {
          const row = message.data.subarray(r * width, (r + 1) * width);
          // Selection sampling (Knuth's algorithm S): exactly heldK of splitSize, in one pass.
          if (heldK > 0 && holdRng.int(splitSize - seen) < heldK - heldCount) {
            seen++;
            heldCount++;
            if (forward) {
              held.rows.push(row.slice());
              held.labels.push(message.labels[r]!);
            }
            continue;
          }
          seen++;
          if (seenLabels) seenLabels[message.labels[r]!]!++;
          if (!sample) continue;
          if (fill < capacity) {
            window.set(row as never, fill * width);
            windowLabels[fill++] = message.labels[r]!;
            continue;
          }
          const j = rng.int(capacity);
          emitRow(j, out);
          window.set(row as never, j * width);
          windowLabels[j] = message.labels[r]!;
        }
        if (forward) flushHeld(out, message, heldCount === heldK);
        ctx.progress({ epoch, window: fill, emitted });
      },
      complete() {
        if (!window) {
          throw new RxtrainError(
            'E_DATA',
            `shuffle: no ${settings.split} examples reached the sampler (pass ${epoch + 1})`,
          );
        }
        draining = true;
        if (seenLabels) warnUnusedClasses(ctx, settings, seenLabels, classNames);
      },
      pull(out) {
        if (!draining) return false;
        if (fill === 0) {
          if (blockData && blockFill > 0) {
            flushBlock(out);
            return true;
          }
          return false;
        }
        // Empty the window in random order (swap-remove), one block at a time.
        const before = out.pending;
        while (fill > 0 && out.pending === before) {
          const j = rng.int(fill);
          emitRow(j, out);
          fill--;
          if (j !== fill) {
            window!.copyWithin(j * width, fill * width, (fill + 1) * width);
            windowLabels[j] = windowLabels[fill]!;
          }
        }
        if (fill === 0 && out.pending === before && blockData && blockFill > 0) flushBlock(out);
        return true;
      },
    };
  });
}
