/**
 * A YAML file read for validation — an experiment config or a sweep file: its size bounded, its
 * syntax errors thrown with line and column, keys that would reach an object's prototype reported,
 * and its aliases expanded within bounds. The callers add their own schemas (config.ts,
 * sweep/sweepFile.ts); the Locator maps their problems back to the file.
 */
import { readFileSync } from 'node:fs';
import { type Document, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import { ConfigError, type ConfigIssue, RxtrainError } from '../util/errors.js';
import { Locator } from './configLocator.js';
import { RESERVED_KEYS } from './configOverrides.js';

/** The largest file read: a config is a few kB; 50 MB of YAML took 15 s and 1.9 GB. */
const MAX_YAML_BYTES = 1024 * 1024;

export interface YamlSource {
  doc: Document;
  locate: Locator;
  /** Problems found so far (reserved keys); the caller adds its own and throws them together. */
  issues: ConfigIssue[];
}

/** The text of `file` (`what` it is, for the error: "config", "sweep file"). */
export function readYamlFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new RxtrainError(
      'E_USAGE',
      `${file}: cannot read ${what} (${(error as NodeJS.ErrnoException).code})`,
    );
  }
}

/** Parse `text` (from `file`); throws a ConfigError when it is too large or not valid YAML. */
export function parseYamlSource(file: string, text: string, what: string): YamlSource {
  if (text.length > MAX_YAML_BYTES) {
    throw new ConfigError(file, [
      {
        path: '',
        message: `the file is ${text.length} bytes; a ${what} is at most ${MAX_YAML_BYTES} (1 MiB)`,
      },
    ]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
        line: e.linePos?.[0]?.line,
        column: e.linePos?.[0]?.col,
      })),
    );
  }
  const issues: ConfigIssue[] = [];
  // Keys that would reach an object's prototype are no setting anywhere (`__proto__: {lr: 5}`
  // would otherwise set lr through the prototype).
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && RESERVED_KEYS.has(String(pair.key.value)) && pair.key.range) {
        const pos = lines.linePos(pair.key.range[0]);
        issues.push({
          path: '',
          message: `"${pair.key.value}" is not a setting name`,
          line: pos.line,
          column: pos.col,
        });
      }
    },
  });
  return { doc, locate: new Locator(doc, lines), issues };
}

/**
 * The document as plain values. Aliases expand here; a document that expands to more than a few
 * hundred nodes through them is an attack (billion laughs), not a config: a ConfigError, with
 * `issues` found before.
 */
export function plainValues(source: YamlSource, file: string): unknown {
  try {
    return source.doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (error) {
    throw new ConfigError(file, [
      ...source.issues,
      { path: '', message: (error as Error).message.split('\n')[0]! },
    ]);
  }
}
