/**
 * Where a config's problems are: key paths mapped to line and column in the YAML source, schema
 * issues turned into plain located messages, and "did you mean" hints for misspelled names.
 */
import { type Document, isMap, isPair, isScalar, type LineCounter, type Node } from 'yaml';
import type { ConfigIssue } from '../util/errors.js';
import type { SchemaIssue } from './stage.js';

/** Maps key paths to places in the YAML source. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** An issue at a key path; points at the deepest part of the path present in the file. */
  at(path: readonly (string | number)[], message: string, missingKey?: string): ConfigIssue {
    const full = missingKey ? [...path, missingKey] : path;
    return { path: pathString(full), message, ...this.position(path) };
  }

  position(path: readonly (string | number)[]): { line?: number; column?: number } {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : (this.doc.getIn(path.slice(0, n), true) as Node | undefined);
      const offset = (node as { range?: [number, number, number] } | null | undefined)?.range?.[0];
      if (offset !== undefined) {
        const pos = this.lines.linePos(offset);
        return { line: pos.line, column: pos.col };
      }
    }
    return {};
  }

  /** Where a key (not its value) sits in the map at `path`. */
  keyPosition(path: readonly (string | number)[], key: string): { line?: number; column?: number } {
    const map = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    if (isMap(map)) {
      for (const pair of map.items) {
        if (isPair(pair) && isScalar(pair.key) && pair.key.value === key && pair.key.range) {
          const pos = this.lines.linePos(pair.key.range[0]);
          return { line: pos.line, column: pos.col };
        }
      }
    }
    return this.position(path);
  }

  /** Turn a schema issue (relative to `base`) into located config issues. */
  issues(
    base: readonly (string | number)[],
    issue: SchemaIssue,
    schema: unknown,
    overridden: Map<string, string>,
  ): ConfigIssue[] {
    const rel = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    const path = [...base, ...rel];
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      const known = knownKeys(schema, rel);
      return issue.keys.map((key) => {
        const hint = suggest(key, known);
        const valid = known.length > 0 ? `; valid keys: ${known.join(', ')}` : '';
        return {
          path: pathString([...path, key]),
          message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}${valid}`,
          ...this.keyPosition(path, key),
          ...originOf(overridden, [...path, key]),
        };
      });
    }
    const value = this.doc.getIn(path);
    return [
      {
        path: pathString(path),
        message: plainMessage(issue.message, value),
        ...this.position(path),
        ...originOf(overridden, path),
      },
    ];
  }
}

/** zod's wording, made plain: "Invalid input: expected number, received string" → "expected number, got "fast"". */
function plainMessage(message: string, value: unknown): string {
  let m = message.replace(/^Invalid input: /, '');
  const shown = JSON.stringify(value);
  if (value === undefined && /, received undefined$/.test(m))
    return `missing (${m.replace(/, received undefined$/, '')})`;
  if (/, received \w+$/.test(m)) return m.replace(/, received \w+$/, `, got ${shown}`);
  m = m
    .replace(/^Invalid discriminator value\. Expected /, 'expected ')
    .replace(/^Too small: /, '')
    .replace(/^Too big: /, '');
  if (value !== undefined && !m.includes(shown)) m += `, got ${shown}`;
  return m.charAt(0).toLowerCase() + m.slice(1);
}

export function originOf(
  overridden: Map<string, string>,
  path: readonly (string | number)[],
): { origin?: string } {
  // The --set that gave this key, or a map or list above it (`--set 'sgd.init={std: abc}'`).
  for (let n = path.length; n > 0; n--) {
    const origin = overridden.get(pathString(path.slice(0, n)));
    if (origin) return { origin };
  }
  return {};
}

export function pathString(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** Keys a (zod) object schema accepts at a relative path, for "did you mean" hints. */
function knownKeys(schema: unknown, path: readonly (string | number)[]): string[] {
  let s = unwrap(schema);
  for (const p of path) {
    if (!s) return [];
    if (typeof p === 'number') s = unwrap((s as { element?: unknown }).element);
    else s = unwrap((s as { shape?: Record<string, unknown> }).shape?.[p]);
  }
  const shape = (s as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
}

function unwrap(schema: unknown): unknown {
  let s = schema as { _zod?: { def?: { innerType?: unknown; in?: unknown } } } | undefined;
  for (let i = 0; i < 10 && s?._zod?.def; i++) {
    const next = s._zod.def.innerType ?? s._zod.def.in;
    if (!next) break;
    s = next as typeof s;
  }
  return s;
}

export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => (a.line ?? 1e9) - (b.line ?? 1e9) || (a.column ?? 0) - (b.column ?? 0));
}

/** The closest known name within a small edit distance, if any. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}
