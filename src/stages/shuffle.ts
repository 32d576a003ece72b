/**
 * shuffle — a seeded sampler over the training split, emitting blocks of consecutive samples.
 *
 * Modes:
 *   - `permutation`: every pass visits each training example once, in a fresh seeded order.
 *   - `with-replacement`: each sample is drawn uniformly at random (the notebook's `randint`);
 *     a pass is `population` draws.
 *   - `buffer`: a bounded window of `bufferSize` examples; each arriving example replaces a random
 *     one, which is emitted (tfjs-data's shuffle). It samples while data is still arriving and
 *     holds only the window; each pass re-reads the input.
 * The first two hold the training split in memory (as bytes) and start when the input has ended.
 *
 * `holdout` keeps a seeded random subset of the training split out of sampling and sends it on as
 * a validation split (`val` by default) for the evaluator, like PyTorch's SubsetRandomSampler.
 *
 * State is O(1): each block carries the sampler position it was drawn from (pass, cursor and the
 * generator state at the start of the pass or block), never a copy of the data. A consumer that
 * checkpoints records that position and how many of the block's samples it used; restoring it
 * here resumes the exact sequence.
 *
 * Messages of other splits pass through (in `buffer` mode, during the first pass only).
 *
 * @example
 *   - type: shuffle
 *     mode: permutation
 *     seed: 7
 *     holdout: { size: 5000 }
 */
import { z } from 'zod';
import { concatFlows, type Emitter, type Flow, transform } from '../flow/index.js';
import { ExampleStore } from '../pipeline/exampleStore.js';
import type { Examples, FeatureTransform, Message, SampleBlock } from '../pipeline/messages.js';
import { defineStage, type StageContext } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { Prng, type PrngState } from '../util/random.js';

export const shuffleSettings = z.strictObject({
  mode: z
    .enum(['permutation', 'with-replacement', 'buffer'])
    .default('permutation')
    .describe('how samples are drawn'),
  seed: z
    .int()
    .min(0)
    .max(0xffffffff)
    .optional()
    .describe('sampler seed (default: derived from the run seed)'),
  split: z.string().default('train').describe('the split to sample from'),
  bufferSize: z.int().min(1).default(10000).describe('window size in buffer mode'),
  blockSize: z.int().min(1).max(65536).default(256).describe('samples per emitted block'),
  holdout: z
    .strictObject({
      size: z.int().min(1).optional().describe('examples held out'),
      fraction: z.number().gt(0).lt(1).optional().describe('fraction of the split held out'),
      split: z.string().default('val').describe('name of the held-out split'),
    })
    .superRefine((h, ctx) => {
      if ((h.size === undefined) === (h.fraction === undefined))
        ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of size or fraction' });
    })
    .optional()
    .describe('a validation split held out from training'),
});
export type ShuffleSettings = z.output<typeof shuffleSettings>;

/** A sampler position: where a block's first sample was drawn from. */
export type SamplerPosition =
  | { mode: 'permutation'; epoch: number; cursor: number; rng: PrngState }
  | { mode: 'with-replacement'; drawn: number; rng: PrngState }
  | { mode: 'buffer'; epoch: number; emitted: number; rng: PrngState };

/** What a checkpoint holds for the sampler: a block position and how many of its samples were used. */
export interface SamplerRestore {
  position: SamplerPosition;
  skip: number;
}

export const shuffleStage = defineStage<ShuffleSettings>({
  type: 'shuffle',
  summary: 'seeded sampler: permutation per pass, with replacement, or a bounded buffer window',
  settings: shuffleSettings,
  describeProgress: describeShuffleProgress,
  stateful: true,
  create: (settings, ctx) => (input) => {
    const restored = ctx.restored as SamplerRestore | undefined;
    if (restored && restored.position.mode !== settings.mode) {
      throw new RxtrainError(
        'E_RESUME',
        `shuffle: the checkpoint was taken in ${restored.position.mode} mode, the config says ${settings.mode}`,
      );
    }
    return settings.mode === 'buffer'
      ? bufferSampler(input, settings, ctx, restored)
      : storeSampler(input, settings, ctx, restored);
  },
});

/** Two independent generators from the stage's seed: one for sampling, one for the holdout. */
function generators(settings: ShuffleSettings, ctx: StageContext): { sampling: Prng; holdoutSeed: number } {
  const root = ctx.rng(settings.seed);
  const sampling = new Prng(root.nextUint32());
  return { sampling, holdoutSeed: root.nextUint32() };
}

function holdoutSize(settings: ShuffleSettings, n: number): number {
  const h = settings.holdout;
  if (!h) return 0;
  const k = h.size ?? Math.round(h.fraction! * n);
  if (k >= n) {
    throw new RxtrainError(
      'E_DATA',
      `shuffle.holdout: cannot hold out ${k} of ${n} ${settings.split} examples`,
    );
  }
  return k;
}

function requireReady(t: FeatureTransform | undefined, settings: ShuffleSettings): FeatureTransform {
  if (!t) {
    throw new RxtrainError(
      'E_DATA',
      `shuffle: ${settings.split} examples carry no feature transform (add a normalise stage before shuffle)`,
    );
  }
  if (!t.ready) {
    throw new RxtrainError(
      'E_CONFIG',
      'shuffle: normalise is still gathering statistics from the training split; with shuffle.mode buffer set normalise.mean and normalise.std',
    );
  }
  return t;
}

/** permutation and with-replacement: hold the split, then sample from it. */
function storeSampler(
  input: Flow<Message>,
  settings: ShuffleSettings,
  ctx: StageContext,
  restored: SamplerRestore | undefined,
): Flow<Message> {
  return transform<Message, Message>(input, () => {
    const store = new ExampleStore(settings.split);
    const { sampling: rng, holdoutSeed } = generators(settings, ctx);
    let prepared = false;
    let pool = new Int32Array(0);
    let held = new Int32Array(0);
    let heldSent = 0;
    let heldEnded = true;
    let transformReady: FeatureTransform | undefined;
    // permutation state
    let epoch = 0;
    let cursor = 0;
    let order = new Int32Array(0);
    let epochStart: PrngState = rng.snapshot();
    // with-replacement state
    let drawn = 0;

    const newEpochOrder = () => {
      epochStart = rng.snapshot();
      order = pool.slice();
      rng.shuffle(order);
    };

    const prepare = () => {
      if (store.count === 0) {
        throw new RxtrainError('E_DATA', `shuffle: no ${settings.split} examples reached the sampler`);
      }
      store.trim();
      transformReady = requireReady(store.transform, settings);
      const n = store.count;
      const k = holdoutSize(settings, n);
      if (k > 0) {
        const all = new Int32Array(n);
        for (let i = 0; i < n; i++) all[i] = i;
        new Prng(holdoutSeed).shuffle(all);
        held = all.slice(0, k).sort();
        pool = all.slice(k).sort();
        heldEnded = false;
      } else {
        pool = new Int32Array(n);
        for (let i = 0; i < n; i++) pool[i] = i;
      }
      if (settings.mode === 'permutation') {
        if (restored) {
          const p = restored.position as Extract<SamplerPosition, { mode: 'permutation' }>;
          rng.restore(p.rng);
          epoch = p.epoch;
          newEpochOrder();
          cursor = p.cursor + restored.skip;
          while (cursor >= pool.length) {
            cursor -= pool.length;
            epoch++;
            newEpochOrder();
          }
        } else newEpochOrder();
      } else if (restored) {
        const p = restored.position as Extract<SamplerPosition, { mode: 'with-replacement' }>;
        rng.restore(p.rng);
        drawn = p.drawn;
        for (let i = 0; i < restored.skip; i++) {
          rng.int(pool.length);
          drawn++;
        }
      }
      ctx.progress({ population: pool.length, heldOut: held.length, mode: settings.mode });
      prepared = true;
    };

    const sendHeldOut = (out: Emitter<Message>) => {
      if (heldSent < held.length) {
        const n = Math.min(1024, held.length - heldSent);
        const data = store.allocate(n);
        const labels = new Int32Array(n);
        store.gather(held, heldSent, n, data, labels);
        const batch: Examples = {
          kind: 'examples',
          split: settings.holdout!.split,
          start: heldSent,
          count: n,
          splitSize: held.length,
          shape: store.shape,
          width: store.width,
          data,
          labels,
          classes: store.classes,
          transform: transformReady,
          source: `${ctx.id} holdout of ${settings.split}`,
        };
        heldSent += n;
        out.push(batch);
        return;
      }
      heldEnded = true;
      out.push({ kind: 'split-end', split: settings.holdout!.split, count: held.length });
    };

    /**
     * A block of the given store rows. It carries their row numbers, not copies: the updater reads
     * each row straight from the store, which no longer changes once sampling has begun.
     */
    const block = (rows: Int32Array, position: SamplerPosition, index: number, ep: number): SampleBlock => {
      return {
        kind: 'samples',
        sampler: ctx.id,
        epoch: ep,
        position,
        index,
        population: pool.length,
        count: rows.length,
        width: store.width,
        shape: store.shape,
        data: store.data,
        labels: store.labels,
        rows,
        classes: store.classes,
        transform: transformReady!,
      };
    };

    return {
      next(message, out) {
        if (message.kind === 'examples' && message.split === settings.split) store.add(message);
        else if (!(message.kind === 'split-end' && message.split === settings.split)) out.push(message);
      },
      complete() {
        prepare();
      },
      pull(out) {
        if (!prepared) return false;
        if (!heldEnded) {
          sendHeldOut(out);
          return true;
        }
        const population = pool.length;
        if (settings.mode === 'permutation') {
          if (cursor >= population) {
            epoch++;
            cursor = 0;
            newEpochOrder();
          }
          const count = Math.min(settings.blockSize, population - cursor);
          const position: SamplerPosition = { mode: 'permutation', epoch, cursor, rng: epochStart };
          out.push(block(order.slice(cursor, cursor + count), position, cursor, epoch));
          cursor += count;
        } else {
          const inEpoch = drawn % population;
          const count = Math.min(settings.blockSize, population - inEpoch);
          const position: SamplerPosition = { mode: 'with-replacement', drawn, rng: rng.snapshot() };
          const picks = new Int32Array(count);
          for (let i = 0; i < count; i++) picks[i] = pool[rng.int(population)]!;
          out.push(block(picks, position, inEpoch, Math.floor(drawn / population)));
          drawn += count;
        }
        return true;
      },
    };
  });
}

/** buffer: a bounded window, one pass over the input per epoch. */
function bufferSampler(
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
    let t: FeatureTransform | undefined;
    let emitted = 0;
    let skip = initialSkip;
    let splitSize = 0;
    let seen = 0;
    let heldK = 0;
    let heldCount = 0;
    let draining = false;
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
      const transformReady = requireReady(t, settings);
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
          splitSize = message.splitSize;
          heldK = holdoutSize(settings, splitSize);
          window =
            message.data instanceof Float32Array
              ? new Float32Array(capacity * width)
              : new Uint8Array(capacity * width);
          windowLabels = new Int32Array(capacity);
        }
        t = message.transform;
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

import type { ProgressView } from '../pipeline/stage.js';
import { count } from '../progress/format.js';

/**
 * What shuffle reports with `ctx.progress`: over the whole split (permutation, with-replacement)
 * its population once, or in buffer mode its window as it samples.
 */
export interface ShuffleCounters {
  mode?: ShuffleSettings['mode'];
  /** Examples sampled from, and held out of the split. */
  population?: number;
  heldOut?: number;
  /** Buffer mode: the pass, the window's fill, and samples emitted in the pass. */
  epoch?: number;
  window?: number;
  emitted?: number;
}

/** `permutation over 54,000 examples, 6,000 held out`, `buffer 10,000, 3,200 sampled` or "collecting". */
export function describeShuffleProgress(c: Partial<ShuffleCounters>): ProgressView {
  const idle = 'collecting';
  if (c.population !== undefined) {
    const held = c.heldOut ? `, ${count(c.heldOut)} held out` : '';
    return { text: `${c.mode} over ${count(c.population)} examples${held}`, idle };
  }
  if (c.window !== undefined)
    return { text: `buffer ${count(c.window)}, ${count(c.emitted ?? 0)} sampled`, idle };
  return { text: idle, idle };
}
