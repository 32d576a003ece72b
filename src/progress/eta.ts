/** How far back the step rate for the ETA looks: long enough to smooth, short enough to follow. */
const RATE_WINDOW_MS = 10_000;
/** Bounds the observations kept for the rate (the window is also bounded in time). */
const RATE_SAMPLES = 64;

/**
 * The trainer's recent steps per second, from (step, elapsedMs) pairs the events carry — never
 * from a clock of its own, so a replayed log gives the same ETA.
 */
export class StepRate {
  /** Oldest first; steps only grow. */
  private readonly seen: { step: number; at: number }[] = [];

  observe(step: number, at: number): void {
    const last = this.seen.at(-1);
    if (last && step <= last.step) return;
    this.seen.push({ step, at });
    while (
      this.seen.length > RATE_SAMPLES ||
      (this.seen.length > 2 && at - this.seen[0]!.at > RATE_WINDOW_MS)
    )
      this.seen.shift();
  }

  /** Updates per second over the recent window, or undefined before there are two observations. */
  perSecond(): number | undefined {
    const first = this.seen[0];
    const last = this.seen.at(-1);
    if (!first || !last || last.at <= first.at) return undefined;
    return ((last.step - first.step) * 1000) / (last.at - first.at);
  }
}
