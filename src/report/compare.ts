/**
 * Comparing runs by their configs: which settings differ, a label for each run made of them
 * (`lr=0.1 batchSize=64`), and the table of differences the page shows instead of every config
 * in full. Reads the resolved config.yaml of each run (every default filled in), so a setting left
 * at its default in one run and given in another still compares by value.
 */
import { parse } from 'yaml';

/** A setting's key path, its stage named by id: `sgd.lr`, `sgd.schedule.type`, `checkpoint.every`. */
export type Settings = Map<string, string>;

/** The settings of one resolved config, flattened to key paths; undefined when it does not parse. */
export function flattenConfig(text: string | undefined): Settings | undefined {
  if (text === undefined) return undefined;
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return undefined;
  }
  if (!doc || typeof doc !== 'object') return undefined;
  const out: Settings = new Map();
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key !== 'stages') flatten(out, key, value);
    else if (Array.isArray(value)) {
      for (const [i, stage] of value.entries()) {
        if (!stage || typeof stage !== 'object') continue;
        const { type, id, ...rest } = stage as Record<string, unknown>;
        const name = typeof id === 'string' ? id : typeof type === 'string' ? type : `stages[${i}]`;
        out.set(`${name}.type`, show(type));
        for (const [k, v] of Object.entries(rest)) flatten(out, `${name}.${k}`, v);
      }
    }
  }
  return out;
}

function flatten(out: Settings, path: string, value: unknown): void {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(path, '{}');
    for (const [k, v] of entries) flatten(out, `${path}.${k}`, v);
  } else out.set(path, show(value));
}

/** A value as a reader would write it in YAML: `0.1`, `cosine`, `[test, val]`. */
function show(value: unknown): string {
  if (value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  return JSON.stringify(value);
}

export interface Comparison {
  /** Key paths whose values are not the same in every run (a key some runs lack counts), in file order. */
  keys: string[];
  /** The short name of each key: the shortest tail of its path no other differing key ends with. */
  short: Map<string, string>;
  /** Each run's value of each differing key ('—' where it has none), by run. */
  values: Map<string, string>[];
}

/** Keys whose difference is not a setting: where the run's user modules were on disk. */
const IGNORED = /^modules(\.|$)/;

export function compareSettings(runs: readonly (Settings | undefined)[]): Comparison {
  const known = runs.filter((r): r is Settings => r !== undefined);
  const order: string[] = [];
  const seen = new Set<string>();
  for (const r of known)
    for (const k of r.keys()) {
      if (seen.has(k)) continue;
      seen.add(k);
      order.push(k);
    }
  const keys =
    known.length < 2
      ? []
      : order.filter((k) => !IGNORED.test(k) && new Set(known.map((r) => r.get(k) ?? '—')).size > 1);
  const short = new Map(keys.map((k) => [k, shortName(k, keys)]));
  const values = runs.map((r) => new Map(keys.map((k) => [k, r?.get(k) ?? '—'])));
  return { keys, short, values };
}

function shortName(key: string, keys: readonly string[]): string {
  const parts = key.split('.');
  for (let n = 1; n < parts.length; n++) {
    const tail = parts.slice(-n).join('.');
    if (keys.every((k) => k === key || !(k === tail || k.endsWith(`.${tail}`)))) return tail;
  }
  return key;
}

/** Settings shown in a label before the rest are counted as "+N". */
const LABEL_KEYS = 3;

/**
 * Each run's label: the settings in which it differs from the others (the experiment's name
 * first, when that differs); the directory's name where that says nothing (a single run, equal
 * configs, no config); and the directory's name after it where two runs would share a label.
 */
export function runLabels(dirNames: readonly string[], comparison: Comparison): string[] {
  const keys = [...comparison.keys].sort((a, b) => Number(b === 'name') - Number(a === 'name'));
  const labels = comparison.values.map((values, i) => {
    if (keys.length === 0 || [...values.values()].every((v) => v === '—')) return dirNames[i]!;
    const shown = keys
      .slice(0, LABEL_KEYS)
      .map((k) => `${comparison.short.get(k)}=${values.get(k)}`)
      .join(' ');
    return keys.length > LABEL_KEYS ? `${shown} +${keys.length - LABEL_KEYS}` : shown;
  });
  const count = new Map<string, number>();
  for (const l of labels) count.set(l, (count.get(l) ?? 0) + 1);
  const withDir = labels.map((l, i) =>
    count.get(l)! > 1 && l !== dirNames[i] ? `${l} (${dirNames[i]})` : l,
  );
  // Directory names can repeat too (runs/a and other/a): number the later ones.
  const seen = new Map<string, number>();
  return withDir.map((l) => {
    const n = (seen.get(l) ?? 0) + 1;
    seen.set(l, n);
    return n > 1 ? `${l} (${n})` : l;
  });
}
