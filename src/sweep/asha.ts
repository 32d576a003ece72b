/**
 * Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel
 * Hyperparameter Tuning", MLSys 2020). Rung k sits at resource minResource·η^k (steps or epochs),
 * below maxResource. A trial's metric at its first evaluation at or past a rung is its result
 * there. A trial may go on past rung k only while it is among the top ⌊n/η⌋ of the n results
 * recorded at rung k so far; otherwise it is stopped there (its run checkpoints on SIGTERM). A
 * stopped trial is promoted — resumed from that checkpoint — once later results put it in the top
 * ⌊n/η⌋ of its rung: each free slot first promotes the best such trial of the highest rung, and
 * only then starts a new one. So at most about 1/η of each rung goes on, none waits for a rung to
 * fill (the asynchronous part), and the early trials, compared against few, are not lost: they
 * wait to be promoted.
 *
 * A finite sweep ends with a tail: once no trial is left to start, a rung gets no more results,
 * and with fewer than η there its ⌊n/η⌋ is 0 — nothing would ever finish training. In that tail
 * (`lenient`) the top ⌈n/η⌉ go on instead, so the best trials of the highest rung are trained to
 * the end.
 *
 * The class is pure bookkeeping; the scheduler feeds it evaluations and acts on its answers.
 */
import type { AshaSpec } from './sweepSchema.js';

export interface RungPlace {
  rank: number;
  of: number;
}

export class Asha {
  /** Rung → trial → value, in the order the results arrived (ties go to the earlier). */
  private readonly results = new Map<number, Map<string, number>>();
  private readonly promoted = new Map<number, Set<string>>();

  constructor(
    readonly spec: AshaSpec,
    readonly mode: 'max' | 'min',
  ) {}

  /** The resource of rung k. */
  resource(rung: number): number {
    return this.spec.minResource * this.spec.reductionFactor ** rung;
  }

  hasRung(rung: number): boolean {
    return this.spec.maxResource === undefined || this.resource(rung) < this.spec.maxResource - 1e-9;
  }

  /** Whether an evaluation at this step and epoch completes rung k. */
  reaches(rung: number, at: { step: number; epoch: number }): boolean {
    if (!this.hasRung(rung)) return false;
    const done = this.spec.resource === 'steps' ? at.step : at.epoch;
    return done >= this.resource(rung) - 1e-9;
  }

  /** Record a trial's result at a rung (a repeat, from a re-read log, changes nothing). */
  record(trial: string, rung: number, value: number): RungPlace {
    const rungResults = this.results.get(rung) ?? new Map<string, number>();
    this.results.set(rung, rungResults);
    if (!rungResults.has(trial)) rungResults.set(trial, value);
    return this.place(trial, rung);
  }

  /** Its rank among the results at the rung (1 = best). */
  place(trial: string, rung: number): RungPlace {
    const order = this.ranked(rung);
    return { rank: order.indexOf(trial) + 1, of: order.length };
  }

  /**
   * At a rung just reached: go on (and count as promoted) when among the top ⌊n/η⌋ (⌈n/η⌉ when
   * `lenient`), else stop.
   */
  decide(trial: string, rung: number, lenient = false): 'continue' | 'stop' {
    if (!this.inTop(trial, rung, lenient)) return 'stop';
    this.markPromoted(trial, rung);
    return 'continue';
  }

  /** Of the stopped trials (each at its rung), the one to promote now, from the highest rung. */
  promotable(
    stopped: readonly { id: string; rung: number }[],
    lenient = false,
  ): { id: string; rung: number } | undefined {
    const rungs = [...new Set(stopped.map((s) => s.rung))].sort((a, b) => b - a);
    for (const rung of rungs) {
      const waiting = new Set(stopped.filter((s) => s.rung === rung).map((s) => s.id));
      const best = this.ranked(rung).find(
        (id) => waiting.has(id) && !this.promoted.get(rung)?.has(id) && this.inTop(id, rung, lenient),
      );
      if (best) return { id: best, rung };
    }
    return undefined;
  }

  markPromoted(trial: string, rung: number): void {
    const set = this.promoted.get(rung) ?? new Set<string>();
    this.promoted.set(rung, set);
    set.add(trial);
  }

  private inTop(trial: string, rung: number, lenient: boolean): boolean {
    const order = this.ranked(rung);
    const share = order.length / this.spec.reductionFactor;
    const top = lenient ? Math.ceil(share) : Math.floor(share);
    const i = order.indexOf(trial);
    return i >= 0 && i < top;
  }

  /** Trial ids at a rung, best first; a metric that is not a number (a diverged loss) is last. */
  private ranked(rung: number): string[] {
    const entries = [...(this.results.get(rung) ?? new Map<string, number>()).entries()];
    const score = (v: number) =>
      Number.isFinite(v) ? (this.mode === 'max' ? v : -v) : Number.NEGATIVE_INFINITY;
    // Array.prototype.sort is stable: equal scores keep their arrival order.
    return entries.sort((a, b) => score(b[1]) - score(a[1]) || 0).map(([id]) => id);
  }
}
