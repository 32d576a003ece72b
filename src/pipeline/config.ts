/**
 * Experiment configs: YAML in, a validated and resolved pipeline description out.
 *
 * Validation runs in phases and reports every problem at once, each with its line and column in
 * the file, its key path (`stages[3].lr`) and what would be valid:
 *   1. YAML syntax, size and reserved keys (yamlSource.ts, shared with sweep files);
 *   2. `--set` overrides;  3. the top level (capacity, checkpoint policy);
 *   4. user stage modules;  5. each stage's `type`, then its own settings schema;
 *   6. across stages (wiring.ts): each need a stage declares has a provider before it, and
 *      `checkpoint.keepBest` has checkpoints to choose from.
 */
import { basename, dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYamlValue, stringify } from 'yaml';
import { ConfigError, RxtrainError } from '../util/errors.js';
import { importModule } from '../util/importModule.js';
import { sortIssues, suggest } from './configLocator.js';
import { applyOverride, mergeNested, type NestedOverride } from './configOverrides.js';
import {
  capacitySchema,
  type ExperimentConfig,
  experimentSchema,
  type ResolvedStage,
  WIRING_KEYS,
} from './experimentSchema.js';
import type { StageDefinition } from './stage.js';
import { checkCheckpointPolicy, checkWiring } from './wiring.js';
import { parseYamlSource, plainValues, readYamlFile } from './yamlSource.js';

export { pathString, suggest } from './configLocator.js';
export { type ExperimentConfig, experimentSchema, type ResolvedStage } from './experimentSchema.js';

export interface LoadOptions {
  /** The stage definitions `type:` may name; user modules add to these. */
  stages: readonly StageDefinition[];
  /** `--set` overrides: `<stageId>.<key>=<value>` or `<topLevelKey>=<value>`. */
  overrides?: readonly string[];
  /** Text to use instead of reading `file` (the API's in-memory configs). */
  text?: string;
  /**
   * Import the config's `modules:` (default true). Off for a config from a run directory that is
   * only read (the report): code from there is never run; a stage type they define is unknown.
   */
  importModules?: boolean;
}

/** Read, override, validate and resolve a config; throws a ConfigError listing every problem. */
export async function loadConfig(file: string, options: LoadOptions): Promise<ExperimentConfig> {
  const source = parseYamlSource(file, options.text ?? readYamlFile(file, 'config'), 'config');
  const { doc, locate, issues } = source;

  // Phase 2: overrides, applied to the document so later errors still point somewhere useful.
  const overridden = new Map<string, string>();
  const nested: NestedOverride[] = [];
  for (const override of options.overrides ?? []) applyOverride(doc, override, issues, overridden, nested);

  // Phase 3: top level.
  const raw = plainValues(source, file);
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
  for (const [i, spec] of (options.importModules === false ? [] : (experiment?.modules ?? [])).entries()) {
    try {
      for (const def of await importStageModule(resolve(baseDir, spec))) definitions.set(def.type, def);
    } catch (error) {
      issues.push(locate.at(['modules', i], `cannot load stage module: ${(error as Error).message}`));
    }
  }

  // Phase 5: each stage.
  const stages: ResolvedStage[] = [];
  // The same by position in the file, undefined where a stage did not validate (for phase 6).
  const byPosition = new Array<ResolvedStage | undefined>(stageEntries.length).fill(undefined);
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
    mergeNested(
      settingsInput,
      definition,
      nested.filter((n) => n.stage === i),
    );
    const parsed = definition.settings.safeParse(settingsInput);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        issues.push(...locate.issues(at, issue, definition.settings, overridden));
      continue;
    }
    const resolved: ResolvedStage = {
      type,
      id,
      capacity: capacity.success ? capacity.data : { items: 8 },
      settings: parsed.data,
      definition,
    };
    stages.push(resolved);
    byPosition[i] = resolved;
  }

  // Phase 6: across stages, from what each stage declares it needs and provides.
  issues.push(...checkWiring(byPosition, locate, overridden));
  if (experiment)
    issues.push(...checkCheckpointPolicy(experiment.checkpoint, byPosition, locate, overridden));
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

/** Configs are not changed once loaded, so their resolved YAML is kept. */
const resolvedYamls = new WeakMap<ExperimentConfig, string>();

/** Give a config its resolved YAML, known already (configCache.ts: a config read back from the cache). */
export function rememberResolvedYaml(config: ExperimentConfig, text: string): void {
  resolvedYamls.set(config, text);
}

/** The config as run: every default filled in, overrides applied. Loading it gives the same run. */
export function resolvedYaml(config: ExperimentConfig): string {
  // A run asks twice (its config hash, then config.yaml): stringifying costs a few ms of its start.
  const known = resolvedYamls.get(config);
  if (known !== undefined) return known;
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
  const text = stringify(doc, { lineWidth: 0 });
  resolvedYamls.set(config, text);
  return text;
}

/**
 * The stage definitions exported by the user modules a config names under `modules:` (for
 * `rxtrain schema --config`). Reads nothing else of the file, so a config with mistakes still
 * gives the schema that shows them.
 */
export async function stageModulesOf(file: string): Promise<StageDefinition[]> {
  const text = readYamlFile(file, 'config');
  let modules: unknown;
  try {
    modules = (parseYamlValue(text) as { modules?: unknown } | null)?.modules ?? [];
  } catch (error) {
    throw new RxtrainError(
      'E_CONFIG',
      `${file}: not valid YAML (${(error as Error).message.split('\n')[0]})`,
    );
  }
  if (!Array.isArray(modules) || !modules.every((m) => typeof m === 'string'))
    throw new RxtrainError('E_CONFIG', `${file}: modules: expected a list of paths`);
  const found: StageDefinition[] = [];
  for (const [i, spec] of modules.entries()) {
    try {
      found.push(...(await importStageModule(resolve(dirname(resolve(file)), spec))));
    } catch (error) {
      throw new RxtrainError(
        'E_CONFIG',
        `${file}: modules[${i}]: cannot load stage module: ${(error as Error).message}`,
      );
    }
  }
  return found;
}

async function importStageModule(path: string): Promise<StageDefinition[]> {
  const mod = await importModule(pathToFileURL(path).href);
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
