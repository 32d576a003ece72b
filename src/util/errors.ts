/**
 * Typed errors. Every failure a user can cause or meet has a stable `code` and the context needed
 * to act on it (file, byte offset, URL, key path). The CLI turns any `RxtrainError` into one line
 * and an exit code; anything else is a bug and is reported with its stack.
 */

export type ErrorCode =
  | 'E_CONFIG'
  | 'E_USAGE'
  | 'E_FETCH'
  | 'E_FETCH_STATUS'
  | 'E_OFFLINE'
  | 'E_FETCH_CHECKSUM'
  | 'E_FETCH_TIMEOUT'
  | 'E_CACHE'
  | 'E_TAR'
  | 'E_TAR_LIMIT'
  | 'E_TAR_UNSAFE'
  | 'E_GZIP'
  | 'E_IDX_MAGIC'
  | 'E_IDX_DTYPE'
  | 'E_IDX_RANK'
  | 'E_IDX_TRUNCATED'
  | 'E_IDX_TRAILING'
  | 'E_IDX_COUNT'
  | 'E_IDX_LABEL'
  | 'E_IDX_SHAPE'
  | 'E_IDX_MISSING'
  | 'E_RECORD_SHORT'
  | 'E_RECORD_LABEL'
  | 'E_RECORD_MISSING'
  | 'E_ZIP'
  | 'E_DATA'
  | 'E_PROTOCOL'
  | 'E_OVERFLOW'
  | 'E_STALL'
  | 'E_CHECKPOINT'
  | 'E_RESUME'
  | 'E_IO'
  | 'E_MEMORY'
  | 'E_INPUT'
  | 'E_QUEUE';

/** Where an error keeps the names of its classes (a symbol shared by every copy of rxtrain). */
const CLASSES = Symbol.for('rxtrain.errorClasses');

export class RxtrainError extends Error {
  override name = 'RxtrainError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    const names: string[] = [];
    for (let c: unknown = new.target; c && c !== Error; c = Object.getPrototypeOf(c))
      names.push((c as { name: string }).name);
    Object.defineProperty(this, CLASSES, { value: names });
  }

  /**
   * `instanceof` by class name as well as by prototype: a user's stage module imports rxtrain's
   * package (dist/src) while the CLI runs from its bundle, two copies of these classes in one
   * process, and an E_… error thrown by the one must still be reported as such by the other.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // The class on the right of instanceof: often a subclass, so `this`, not RxtrainError.
    // biome-ignore lint/complexity/noThisInStatic: see above
    // biome-ignore lint/complexity/noUselessThisAlias: see above
    const cls: { name: string } = this;
    if (Function.prototype[Symbol.hasInstance].call(cls, value)) return true;
    const names = (value as { [CLASSES]?: unknown } | null | undefined)?.[CLASSES];
    return Array.isArray(names) && names.includes(cls.name);
  }

  /** Plain data for the event log. */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message };
  }
}

/** One problem in a config file: where it is and what is wrong. */
export interface ConfigIssue {
  /** Key path such as `stages[3].lr`. */
  path: string;
  message: string;
  /** 1-based line and column in the YAML file, when the problem has a place there. */
  line?: number;
  column?: number;
  /** Where the value came from when not the file, e.g. `--set sgd.lr=x`. */
  origin?: string;
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where =
    issue.origin ?? (issue.line !== undefined ? `${file}:${issue.line}:${issue.column ?? 1}` : file);
  return `${where} ${issue.path || '(root)'}: ${issue.message}`;
}

export class ConfigError extends RxtrainError {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super('E_CONFIG', issues.map((i) => formatIssue(file, i)).join('\n'));
  }
  override toJSON(): Record<string, unknown> {
    return { code: this.code, file: this.file, issues: this.issues };
  }
}

/** A problem at a byte offset of a file: names the file and the offset. */
export class ByteOffsetError extends RxtrainError {
  override name = 'ByteOffsetError';
  constructor(
    code: ErrorCode,
    readonly file: string,
    readonly offset: number,
    detail: string,
  ) {
    super(code, `${file}: byte ${offset}: ${detail}`);
  }
  override toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, file: this.file, offset: this.offset };
  }
}

/** A malformed IDX file. */
export class IdxError extends ByteOffsetError {
  override name = 'IdxError';
}

/** A malformed file of fixed-size records (CIFAR-10's binary layout). */
export class RecordError extends ByteOffsetError {
  override name = 'RecordError';
}

export class FetchError extends RxtrainError {
  override name = 'FetchError';
  constructor(
    code: ErrorCode,
    readonly url: string,
    detail: string,
    options?: { cause?: unknown; status?: number; retryable?: boolean },
  ) {
    super(code, `${url}: ${detail}`, options);
    this.status = options?.status;
    this.retryable = options?.retryable ?? false;
  }
  readonly status: number | undefined;
  readonly retryable: boolean;
  override toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, url: this.url, status: this.status };
  }
}

/** A broken or hostile archive: names the archive and, where known, the entry. */
export class ArchiveError extends RxtrainError {
  override name = 'ArchiveError';
  constructor(
    code: ErrorCode,
    readonly archive: string,
    readonly entry: string | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${archive}${entry ? `: entry ${entry}` : ''}: ${detail}`, options);
  }
  override toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, archive: this.archive, entry: this.entry };
  }
}

/** The one line a user sees for an error. */
export function describeError(error: unknown): string {
  if (error instanceof RxtrainError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
