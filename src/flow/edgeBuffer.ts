/**
 * What sits between two stages: the counters an edge keeps (`EdgeStats`), the limits it holds to
 * (`EdgeCapacity`, `itemBytes`) and the buffer that keeps both in step (`EdgeBuffer`). Shared by
 * `edge` and `fromPush`.
 */

import { Fifo } from './fifo.js';
import type { Outlet } from './protocol.js';

/**
 * Counters of one edge, for progress events and backpressure tests. Several subscriptions of the
 * same edge (a sampler re-reading its input once per pass) add into one record.
 */
export interface EdgeStats {
  /** Items the upstream stage has emitted into the edge. */
  emitted: number;
  /** Items handed on to the downstream stage. */
  consumed: number;
  /** Items a lossy buffer discarded (only `fromPush` with a `drop-*` strategy ever drops). */
  dropped: number;
  /** Items buffered now: emitted − consumed − dropped. */
  depth: number;
  maxDepth: number;
  /** Bytes buffered now, for items that have a size. */
  bytes: number;
  maxBytes: number;
}

export function edgeStats(): EdgeStats {
  return { emitted: 0, consumed: 0, dropped: 0, depth: 0, maxDepth: 0, bytes: 0, maxBytes: 0 };
}

export interface EdgeCapacity {
  /** Most items held between the two stages. */
  items: number;
  /**
   * Most bytes held, counting items that have `byteLength` or a `bytes` payload. The edge stops
   * asking once it holds this many, so it may exceed the limit by at most one item.
   */
  bytes?: number;
}

/** The size an item occupies in an edge buffer, for byte capacities. */
export function itemBytes(item: unknown): number {
  if (item instanceof Uint8Array) return item.byteLength;
  if (item && typeof item === 'object' && 'byteLength' in item) {
    const n = (item as { byteLength: unknown }).byteLength;
    if (typeof n === 'number') return n;
  }
  return 0;
}

/** Buffered items with their sizes, keeping an `EdgeStats` record in step. */
export class EdgeBuffer<T> {
  private readonly items = new Fifo<T>();
  private readonly sizes = new Fifo<number>();
  /** Bytes held by this buffer (the stats record may sum several buffers). */
  bytes = 0;

  constructor(
    private readonly stats: EdgeStats,
    private readonly measure: (item: T) => number,
  ) {}

  get length(): number {
    return this.items.length;
  }

  add(item: T): void {
    const size = this.measure(item);
    this.items.push(item);
    this.sizes.push(size);
    this.bytes += size;
    const s = this.stats;
    s.emitted++;
    s.depth++;
    s.bytes += size;
    if (s.depth > s.maxDepth) s.maxDepth = s.depth;
    if (s.bytes > s.maxBytes) s.maxBytes = s.bytes;
  }

  /** The oldest item, counted as consumed (or as dropped). */
  take(dropped = false): T {
    const size = this.sizes.shift();
    this.bytes -= size;
    const s = this.stats;
    if (dropped) s.dropped++;
    else s.consumed++;
    s.depth--;
    s.bytes -= size;
    return this.items.shift();
  }

  /** Hand held items to the consumer, oldest first, as far as its demand goes. */
  deliver(outlet: Outlet<T>): void {
    while (this.items.length > 0 && outlet.wanted > 0 && !outlet.closed) outlet.push(this.take());
  }

  /** Forget what is held (the subscription ended), taking it out of the stats' depth. */
  clear(): void {
    this.stats.depth -= this.items.length;
    this.stats.bytes -= this.bytes;
    this.bytes = 0;
    this.items.clear();
    this.sizes.clear();
  }
}
