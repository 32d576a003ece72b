/**
 * Experiment configs: YAML in, a validated and resolved pipeline description out.
 *
 * Validation runs in phases and reports every problem at once, each with its line and column in
 * the file, its key path (`stages[3].lr`) and what would be valid:
 *   1. YAML syntax;  2. `--set` overrides;  3. the top level (wiring, checkpoint policy);
 *   4. user stage modules;  5. each stage's `type`, then its own settings schema;  6. across stages.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  parse as parseYamlValue,
  stringify,
} from 'yaml';
import { z } from 'zod';
import type { EdgeCapacity } from '../flow/index.js';
import { ConfigError, type ConfigIssue, RxtrainError } from '../util/errors.js';
import type { CheckpointPolicy } from './checkpoints.js';
import type { SchemaIssue, StageDefinition } from './stage.js';

const capacitySchema = z
  .strictObject({
    items: z.int().min(1).default(8).describe('most items buffered between this stage and the next'),
    bytes: z.int().min(1).optional().describe('most bytes buffered (chunks, decoded examples)'),
  })
  .describe('capacity of the edge after this stage');

const checkpointSchema = z
  .strictObject({
    every: z.int().min(0).default(0).describe('checkpoint every N steps (0: off)'),
    everySeconds: z.number().min(0).default(0).describe('checkpoint every T seconds (0: off)'),
    keep: z.int().min(1).default(3).describe('how many recent checkpoints to keep'),
    keepBest: z
      .string()
      .regex(/^[a-z]+\.(accuracy|loss)$/, 'expected <split>.accuracy or <split>.loss, e.g. val.accuracy')
      .nullable()
      .default(null)
      .describe('also keep the best checkpoint by this evaluation metric'),
    onSignal: z.boolean().default(true).describe('checkpoint and stop on SIGINT/SIGTERM'),
    atEnd: z.boolean().default(true).describe('checkpoint the final model'),
  })
  .describe('when to write checkpoints');

/** The top level of an experiment file. Stage settings are checked by each stage's own schema. */
export const experimentSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
    .optional()
    .describe('run name; defaults to the config file name'),
  seed: z
    .int()
    .min(0)
    .max(0xffffffff)
    .default(0)
    .describe('run seed: stages without their own seed derive one'),
  modules: z
    .array(z.string())
    .default([])
    .describe('JavaScript modules (paths relative to this file) exporting extra stage definitions'),
  capacity: capacitySchema.prefault({}).describe('default capacity of every edge'),
  progressIntervalMs: z.int().min(10).default(500).describe('how often sampled progress events are written'),
  checkpoint: checkpointSchema.prefault({}),
  stages: z.array(z.record(z.string(), z.unknown())).min(1).describe('the pipeline, in order'),
});

/** Keys of a stage entry that belong to the pipeline, not to the stage's settings. */
const WIRING_KEYS = new Set(['type', 'id', 'capacity']);

export interface ResolvedStage {
  type: string;
  id: string;
  capacity: EdgeCapacity;
  settings: unknown;
  definition: StageDefinition;
}

export interface ExperimentConfig {
  /** The config file, as given. */
  file: string;
  /** Directory that relative paths resolve against. */
  baseDir: string;
  name: string;
  seed: number;
  modules: string[];
  capacity: EdgeCapacity;
  progressIntervalMs: number;
  checkpoint: CheckpointPolicy;
  stages: ResolvedStage[];
}

export interface LoadOptions {
  /** The stage definitions `type:` may name; user modules add to these. */
  stages: readonly StageDefinition[];
  /** `--set` overrides: `<stageId>.<key>=<value>` or `<topLevelKey>=<value>`. */
  overrides?: readonly string[];
  /** Text to use instead of reading `file` (the API's in-memory configs). */
  text?: string;
}

/** Read, override, validate and resolve a config; throws a ConfigError listing every problem. */
export async function loadConfig(file: string, options: LoadOptions): Promise<ExperimentConfig> {
  let text: string;
  if (options.text !== undefined) text = options.text;
  else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new RxtrainError(
        'E_USAGE',
        `${file}: cannot read config (${(error as NodeJS.ErrnoException).code})`,
      );
    }
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const locate = new Locator(doc, lines);

  // Phase 1: syntax.
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
  // Phase 2: overrides, applied to the document so later errors still point somewhere useful.
  const overridden = new Map<string, string>();
  for (const override of options.overrides ?? []) applyOverride(doc, override, issues, overridden);

  // Phase 3: top level.
  const raw = doc.toJS() as unknown;
  const top = experimentSchema.safeParse(raw ?? {});
  if (!top.success) {
    for (const issue of top.error.issues)
      issues.push(...locate.issues([], issue, experimentSchema, overridden));
  }
  // Keep going after top-level problems so stage problems are reported in the same pass.
  const experiment = top.success ? top.data : undefined;
  const rawStages = (raw as { stages?: unknown } | null)?.stages;
  const stageEntries: Record<string, unknown>[] =
    experiment?.stages ??
    (Array.isArray(rawStages) ? rawStages.map((e) => (e && typeof e === 'object' ? e : {})) : []);
  const defaultCapacity = experiment?.capacity ?? { items: 8 };
  const baseDir = dirname(resolve(file));

  // Phase 4: user stage modules.
  const definitions = new Map<string, StageDefinition>();
  for (const def of options.stages) definitions.set(def.type, def);
  for (const [i, spec] of (experiment?.modules ?? []).entries()) {
    try {
      for (const def of await importStageModule(resolve(baseDir, spec))) definitions.set(def.type, def);
    } catch (error) {
      issues.push(locate.at(['modules', i], `cannot load stage module: ${(error as Error).message}`));
    }
  }

  // Phase 5: each stage.
  const stages: ResolvedStage[] = [];
  const ids = new Map<string, number>();
  for (const [i, entry] of stageEntries.entries()) {
    const at = ['stages', i];
    const type = entry['type'];
    if (typeof type !== 'string' || type === '') {
      issues.push(locate.at(at, `missing "type" (one of: ${[...definitions.keys()].join(', ')})`, 'type'));
      continue;
    }
    const definition = definitions.get(type);
    if (!definition) {
      const hint = suggest(type, [...definitions.keys()]);
      issues.push(
        locate.at(
          [...at, 'type'],
          `unknown stage type "${type}"${hint ? ` (did you mean "${hint}"?)` : ''}; known types: ${[...definitions.keys()].join(', ')}`,
        ),
      );
      continue;
    }
    const id = entry['id'] ?? type;
    if (typeof id !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(id)) {
      issues.push(
        locate.at([...at, 'id'], 'expected an id of letters, digits, "_" and "-", starting with a letter'),
      );
      continue;
    }
    if (ids.has(id)) {
      issues.push(
        locate.at(
          [...at, 'id'],
          `duplicate stage id "${id}" (also stages[${ids.get(id)}]); give one an "id:"`,
        ),
      );
    }
    ids.set(id, i);
    // A stage's own capacity refines the top-level one: `capacity: {bytes: …}` keeps its item count.
    const own = entry['capacity'];
    const capacity = capacitySchema.safeParse(
      own && typeof own === 'object' && !Array.isArray(own)
        ? { ...defaultCapacity, ...own }
        : (own ?? defaultCapacity),
    );
    if (!capacity.success) {
      for (const issue of capacity.error.issues)
        issues.push(...locate.issues([...at, 'capacity'], issue, capacitySchema, overridden));
    }
    const settingsInput: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) if (!WIRING_KEYS.has(key)) settingsInput[key] = value;
    const parsed = definition.settings.safeParse(settingsInput);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        issues.push(...locate.issues(at, issue, definition.settings, overridden));
      continue;
    }
    stages.push({
      type,
      id,
      capacity: capacity.success ? capacity.data : { items: 8 },
      settings: parsed.data,
      definition,
    });
  }
  if (issues.length > 0 || !experiment) throw new ConfigError(file, sortIssues(issues));
  return {
    file,
    baseDir,
    name: experiment.name ?? basename(file, extname(file)),
    seed: experiment.seed,
    modules: experiment.modules,
    capacity: experiment.capacity,
    progressIntervalMs: experiment.progressIntervalMs,
    checkpoint: experiment.checkpoint,
    stages,
  };
}

/**
 * Validate a config given as a plain object (the library API's way to build an experiment without
 * a YAML file); relative paths resolve against `baseDir`. Same checks, same errors.
 */
export function configFromObject(
  experiment: Record<string, unknown>,
  options: Omit<LoadOptions, 'text'> & { baseDir?: string },
): Promise<ExperimentConfig> {
  const file = resolve(
    options.baseDir ?? '.',
    `${typeof experiment.name === 'string' ? experiment.name : 'experiment'}.yaml`,
  );
  return loadConfig(file, { ...options, text: stringify(experiment) });
}

/** The config as run: every default filled in, overrides applied. Loading it gives the same run. */
export function resolvedYaml(config: ExperimentConfig): string {
  const doc = {
    name: config.name,
    seed: config.seed,
    modules: config.modules.map((m) => resolve(config.baseDir, m)),
    capacity: config.capacity,
    progressIntervalMs: config.progressIntervalMs,
    checkpoint: config.checkpoint,
    stages: config.stages.map((s) => ({
      type: s.type,
      id: s.id,
      capacity: s.capacity,
      ...(s.settings as Record<string, unknown>),
    })),
  };
  return stringify(doc, { lineWidth: 0 });
}

async function importStageModule(path: string): Promise<StageDefinition[]> {
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const found: StageDefinition[] = [];
  const consider = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(consider);
    else if (isStageDefinition(value)) found.push(value);
  };
  // A module exports stage definitions by name, as a default export, or as an array `stages`.
  for (const value of Object.values(mod)) consider(value);
  if (found.length === 0)
    throw new Error(`${path} exports no stage definition (an object with type, settings, create)`);
  return [...new Set(found)];
}

function isStageDefinition(value: unknown): value is StageDefinition {
  if (!value || typeof value !== 'object') return false;
  const v = value as Partial<StageDefinition>;
  return (
    typeof v.type === 'string' &&
    typeof v.create === 'function' &&
    !!v.settings &&
    typeof (v.settings as { safeParse?: unknown }).safeParse === 'function'
  );
}

function applyOverride(
  doc: Document,
  override: string,
  issues: ConfigIssue[],
  overridden: Map<string, string>,
) {
  const origin = `--set ${override}`;
  const eq = override.indexOf('=');
  if (eq <= 0) {
    issues.push({ path: '', message: 'expected <stageId>.<key>=<value>', origin });
    return;
  }
  const keyPath = override.slice(0, eq).split('.');
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
  doc.setIn(path, doc.createNode(value));
  overridden.set(pathString(path), origin);
}

/** Maps key paths to places in the YAML source. */
class Locator {
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

function originOf(overridden: Map<string, string>, path: readonly (string | number)[]): { origin?: string } {
  const origin = overridden.get(pathString(path));
  return origin ? { origin } : {};
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

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
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
