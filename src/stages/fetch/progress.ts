/** How the fetch stage's progress is counted and reads on the terminal. */
import type { ProgressView, StageContext } from '../../pipeline/stage.js';
import { formatBytes } from '../../util/format.js';

/** Progress of all files together: bytes received (or read), their total when known, and rate. */
export class FetchMeter {
  private readonly files = new Map<string, { bytes: number; total: number | undefined }>();
  private readonly started: number;

  constructor(private readonly ctx: StageContext) {
    this.started = ctx.clock.now();
  }

  update(file: string, bytes: number, total: number | undefined): void {
    const known = this.files.get(file);
    // A file read from the cache after downloading it does not count twice.
    this.files.set(file, { bytes: Math.max(bytes, known?.bytes ?? 0), total: total ?? known?.total });
    let sum = 0;
    let totalSum: number | undefined = 0;
    for (const f of this.files.values()) {
      sum += f.bytes;
      totalSum = totalSum === undefined || f.total === undefined ? undefined : totalSum + f.total;
    }
    const seconds = (this.ctx.clock.now() - this.started) / 1000;
    this.ctx.progress({
      file,
      bytes: sum,
      total: totalSum,
      rate: seconds > 0 ? Math.round(sum / seconds) : undefined,
    } satisfies FetchCounters);
  }
}

/** What fetch reports with `ctx.progress`: every file together. */
export interface FetchCounters {
  /** The file that moved last. */
  file: string;
  /** Bytes received or read, over every file. */
  bytes: number;
  /** The files' sizes together, once every one is known. */
  total?: number;
  /** Bytes per second since the stage started. */
  rate?: number;
}

/** `3.0 MB / 12 MB  25%  6.0 MB/s  a.gz`, or "opening" until the first bytes. */
export function describeFetchProgress(c: Partial<FetchCounters>): ProgressView {
  if (c.bytes === undefined) return { text: 'opening', idle: 'opening' };
  const parts = [c.total ? `${formatBytes(c.bytes)} / ${formatBytes(c.total)}` : formatBytes(c.bytes)];
  if (c.total) parts.push(`${Math.floor((100 * c.bytes) / c.total)}%`);
  if (c.rate !== undefined) parts.push(`${formatBytes(c.rate)}/s`);
  if (c.file) parts.push(c.file);
  return { text: parts.join('  '), idle: 'opening' };
}
