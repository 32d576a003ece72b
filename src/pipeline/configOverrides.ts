/**
 * `--set` overrides, applied to the parsed document before validation so that later errors still
 * point somewhere useful: `<stageId>.<key>=<value>` or `<topLevelKey>=<value>`, the value parsed as
 * YAML. A key inside a map the file leaves to its default is merged into that default (phase 5)
 * instead of replacing it; keys that would reach an object's prototype are refused everywhere.
 */
import { type Document, isMap, isSeq, parse as parseYamlValue } from 'yaml';
import type { ConfigIssue } from '../util/errors.js';
import { pathString } from './configLocator.js';
import { experimentSchema } from './experimentSchema.js';
import type { StageDefinition } from './stage.js';

/** Keys that would reach an object's prototype: never a setting, anywhere. */
export const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** An override of a key inside a map the file does not write (a default): merged in phase 5. */
export interface NestedOverride {
  stage: number;
  /** The setting the map belongs to, and the path inside it. */
  key: string;
  inner: string[];
  value: unknown;
}

export function applyOverride(
  doc: Document,
  override: string,
  issues: ConfigIssue[],
  overridden: Map<string, string>,
  nested: NestedOverride[],
) {
  const origin = `--set ${override}`;
  const eq = override.indexOf('=');
  if (eq <= 0) {
    issues.push({ path: '', message: 'expected <stageId>.<key>=<value>', origin });
    return;
  }
  const keyPath = override.slice(0, eq).split('.');
  const reserved = keyPath.find((k) => RESERVED_KEYS.has(k) || k === '');
  if (reserved !== undefined) {
    issues.push({
      path: keyPath.join('.'),
      message: reserved ? `"${reserved}" is not a setting name` : 'empty key in the path',
      origin,
    });
    return;
  }
  let value: unknown;
  try {
    value = parseYamlValue(override.slice(eq + 1));
  } catch {
    value = override.slice(eq + 1);
  }
  const stages = doc.get('stages');
  const stageIds: string[] = [];
  if (isSeq(stages)) {
    for (const item of stages.items) {
      if (!isMap(item)) {
        stageIds.push('');
        continue;
      }
      const id = item.get('id') ?? item.get('type');
      stageIds.push(typeof id === 'string' ? id : '');
    }
  }
  const index = stageIds.indexOf(keyPath[0]!);
  let path: (string | number)[];
  if (index >= 0 && keyPath.length >= 2) path = ['stages', index, ...keyPath.slice(1)];
  else if (Object.hasOwn(experimentSchema.shape, keyPath[0]!) && keyPath[0] !== 'stages') path = keyPath;
  else {
    issues.push({
      path: keyPath.join('.'),
      message: `no stage with id "${keyPath[0]}" (stage ids: ${stageIds.filter(Boolean).join(', ')}) and no such top-level key`,
      origin,
    });
    return;
  }
  overridden.set(pathString(path), origin);
  // `decodeIdx.splits.train.images=…` where the file leaves `splits` to its default: change that
  // one key of the default map once the stage's schema is known, rather than replace the map.
  if (index >= 0 && path.length > 3 && !doc.hasIn(path.slice(0, 3))) {
    nested.push({ stage: index, key: String(path[2]), inner: path.slice(3).map(String), value });
    return;
  }
  doc.setIn(path, doc.createNode(value));
}

/**
 * Apply nested overrides to a stage's settings: the map they reach into starts as the stage's
 * default for that key (its schema applied to the settings without it), so sibling keys stay.
 */
export function mergeNested(
  settings: Record<string, unknown>,
  definition: StageDefinition,
  overrides: NestedOverride[],
) {
  if (overrides.length === 0) return;
  const defaults = definition.settings.safeParse(settings);
  for (const o of overrides) {
    const base = defaults.success ? (defaults.data as Record<string, unknown>)[o.key] : undefined;
    let map: Record<string, unknown> =
      settings[o.key] && typeof settings[o.key] === 'object'
        ? (settings[o.key] as Record<string, unknown>)
        : base && typeof base === 'object'
          ? structuredClone(base as Record<string, unknown>)
          : {};
    settings[o.key] = map;
    for (const k of o.inner.slice(0, -1)) {
      const next = map[k];
      map = map[k] = next && typeof next === 'object' ? { ...(next as Record<string, unknown>) } : {};
    }
    map[o.inner.at(-1)!] = o.value;
  }
}
