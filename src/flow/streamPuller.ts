/** `StreamPuller`: paused-mode reading of a Node stream from inside a `transform`'s `pull()`. */

/** The part of a Node or streamx Readable that paused-mode reading needs. */
export interface PausedReadable {
  read(): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: Node and streamx type their listeners differently
  on(event: 'readable' | 'end' | 'error', listener: (...args: any[]) => void): unknown;
  resume(): unknown;
  destroy(error?: Error): unknown;
}

/**
 * Reads a Node (or streamx) Readable in paused mode on behalf of a `transform`'s `pull()`: data is
 * taken only when the stage has demand, so the stream's own buffer fills and its writer waits.
 */
export class StreamPuller {
  private ended = false;

  constructor(
    readonly stream: PausedReadable,
    wake: () => void,
    fail: (error: unknown) => void,
  ) {
    stream.on('readable', wake);
    stream.on('end', () => {
      this.ended = true;
      wake();
    });
    stream.on('error', fail);
  }

  /** The next chunk, or null when none is buffered right now. */
  read(): Buffer | null {
    return this.stream.read() as Buffer | null;
  }

  /** The stream has ended and everything was read. */
  get done(): boolean {
    return this.ended;
  }
}
