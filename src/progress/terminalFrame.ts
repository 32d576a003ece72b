/**
 * The terminal side of a progress display (a run's: renderer.ts; a sweep's: sweepProgress.ts),
 * which only says what its lines are.
 *
 * On a TTY: a frame of lines redrawn in place at most every `redrawMs` (a redraw asked for sooner
 * waits on a timer), lines that stay written above it, every line cut to the terminal's width,
 * because a line that wraps would make the cursor-up count wrong and smear every later frame down
 * the screen. Off a TTY: plain lines with no escape codes, each stamped with the elapsed time, and
 * the status line at most every `intervalMs`.
 */
import { monotonicMs } from '../util/clock.js';
import { duration } from '../util/format.js';

export interface FrameOptions {
  /** Redraw in place with ANSI escapes. */
  tty: boolean;
  /** Colour (only on a TTY; the CLI turns it off when NO_COLOR is set). */
  color: boolean;
  /** Off a TTY: minimum ms between status lines. */
  intervalMs: number;
  /** On a TTY: minimum ms between redraws (default 100). */
  redrawMs?: number;
  /** On a TTY: the terminal's width in columns, asked at each redraw (it may be resized). */
  columns?: () => number | undefined;
  /** Monotonic ms; throttling only. */
  now?: () => number;
  /** Run `fn` after `ms`; returns a cancel function. Tests replace it to step time by hand. */
  setTimer?: (fn: () => void, ms: number) => () => void;
}

/** What a display shows: its frame on a TTY, its status line off one, and the time to stamp. */
export interface FrameContent {
  frame(): string[];
  status(): string | undefined;
  elapsedMs(): number;
}

export const ESC = '\x1b[';
export const SGR = { green: 32, red: 31, cyan: 36, yellow: 33, dim: 2 } as const;

export class TerminalFrame {
  /** Set by `end()`: no more redraws (plain lines may still be written). */
  ended = false;
  private drawnLines = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastStatus = Number.NEGATIVE_INFINITY;
  private cancelPending: (() => void) | undefined;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;

  constructor(
    private readonly write: (text: string) => void,
    readonly options: FrameOptions,
    private readonly content: FrameContent,
  ) {
    this.now = options.now ?? monotonicMs;
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        // A pending redraw must not keep the process alive after the run.
        timer.unref?.();
        return () => clearTimeout(timer);
      });
  }

  /** Something changed: redraw (throttled) on a TTY, a status line (throttled) off one. */
  update(): void {
    if (!this.options.tty) {
      if (this.now() - this.lastStatus < this.options.intervalMs) return;
      const status = this.content.status();
      if (status) {
        this.lastStatus = this.now();
        this.line(status);
      }
      return;
    }
    if (this.cancelPending) return;
    const wait = (this.options.redrawMs ?? 100) - (this.now() - this.lastDraw);
    if (wait <= 0) this.draw();
    else
      this.cancelPending = this.setTimer(() => {
        this.cancelPending = undefined;
        if (!this.ended) this.draw();
      }, wait);
  }

  /** One plain line, stamped with the elapsed time. */
  line(text: string): void {
    this.write(`[${duration(this.content.elapsedMs()).padStart(6)}] ${text}\n`);
  }

  /** Off a TTY: the status line now, if there is one. */
  statusLine(): void {
    const status = this.content.status();
    if (status) this.line(status);
  }

  /** A line that stays: above the frame on a TTY (in colour `code`), a plain line otherwise. */
  message(text: string, code?: number): void {
    if (!this.options.tty) {
      this.line(text);
      return;
    }
    this.clear();
    this.write(`${code === undefined ? this.fit(text) : this.paint(this.fit(text), code)}\n`);
    this.draw();
  }

  /** Whether a frame is on the screen. */
  get drawn(): boolean {
    return this.drawnLines > 0;
  }

  draw(): void {
    this.lastDraw = this.now();
    const lines = this.content.frame();
    this.clear();
    if (lines.length) this.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  /** Erase the frame: cursor to the start of its first line, then erase to the end of the screen. */
  clear(): void {
    if (this.drawnLines > 0) this.write(`${ESC}${this.drawnLines}F${ESC}J`);
    this.drawnLines = 0;
  }

  /** Leave the frame on the screen as it is: what follows is written below it. */
  release(): void {
    this.drawnLines = 0;
  }

  /** Stop redrawing; a redraw still pending is dropped. */
  end(): void {
    this.cancelPending?.();
    this.cancelPending = undefined;
    this.ended = true;
  }

  /** Cut plain text to the terminal width, less `used` columns; one column spare for auto-wrap. */
  fit(text: string, used = 0): string {
    const columns = this.options.columns?.();
    if (!columns || columns <= used + 2) return text;
    const room = columns - used - 1;
    const chars = [...text];
    return chars.length <= room ? text : `${chars.slice(0, room - 1).join('')}…`;
  }

  paint(text: string, code: number): string {
    return this.options.color ? `${ESC}${code}m${text}${ESC}0m` : text;
  }
}
