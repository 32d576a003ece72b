/**
 * Validated configs, remembered, so that running the same experiment again does not parse and
 * validate it again: reading the YAML with its positions and running every stage's zod schema,
 * cold, cost 11-19 ms of each `rxtrain run` (measured in the bundle), about a twentieth of the
 * default experiment's rerun.
 *
 * An entry is kept under `<cacheDir>/configs/` by the sha256 of everything the result depends on:
 * this build of rxtrain (the bundle's build id: a change to any of its code is another build), the
 * config file's path (relative paths resolve against it) and its exact text, and the overrides.
 * A config naming stage modules is not cached (their code is not part of the key), nor are
 * settings that JSON does not carry exactly, nor anything that fails to validate: every error
 * comes from a full load, with its line and column. The entry holds what a load returns (the
 * resolved settings) and the config's resolved YAML; an entry that does not read back as one is
 * ignored, and written again after a full load. Outside the bundle (tsc's modules, the library)
 * there is no build id, and every load is a full one.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.js';
import {
  type ExperimentConfig,
  type LoadOptions,
  loadConfig,
  rememberResolvedYaml,
  resolvedYaml,
} from './config.js';
import type { StageDefinition } from './stage.js';
import { canonical } from './stageCache.js';

/** Set by the bundle (scripts/bundle.ts): a digest of the code it was built from. */
declare const __RXTRAIN_BUILD__: string | undefined;
const BUILD = typeof __RXTRAIN_BUILD__ === 'string' ? __RXTRAIN_BUILD__ : undefined;

const FORMAT = 'rxtrain-config-cache/1';
/** Entries kept; the oldest go first when a new one is written. */
const MOST_ENTRIES = 256;

type RoundTripProblem = { stage: string; message: string };

/**
 * What `roundTripProblems` found, per config: checked once (a first run checks before caching the
 * config, and its run asks again), and none for a config from the cache, checked when written.
 */
const roundTrips = new WeakMap<ExperimentConfig, RoundTripProblem[]>();

interface Entry {
  format: string;
  key: string;
  config: Omit<ExperimentConfig, 'stages'> & {
    stages: {
      type: string;
      id: string;
      capacity: ExperimentConfig['stages'][number]['capacity'];
      settings: unknown;
    }[];
  };
  yaml: string;
}

/** `loadConfig`, through the cache in `cacheDir` when this is a bundled build. */
export async function loadConfigCached(
  file: string,
  options: LoadOptions & { cacheDir: string; build?: string },
): Promise<ExperimentConfig> {
  const build = options.build ?? BUILD;
  if (!build || options.text !== undefined || process.env.RXTRAIN_CONFIG_CACHE === '0')
    return loadConfig(file, options);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return loadConfig(file, options); // it says what is wrong with the file
  }
  const path = resolve(file);
  const key = createHash('sha256')
    .update(JSON.stringify({ format: FORMAT, build, path, text, overrides: options.overrides ?? [] }))
    .digest('hex');
  const at = join(options.cacheDir, 'configs', `${key}.json`);
  const cached = readEntry(at, key, file, options.stages);
  if (cached) return cached;
  const config = await loadConfig(file, { ...options, text });
  const entry = entryOf(config, key);
  if (entry) writeEntry(at, entry);
  return config;
}

/**
 * Stages whose resolved settings (as config.yaml records them) do not validate to the same
 * settings again: `rxtrain resume` could not load that config, or would run another experiment.
 * None for a config read from the cache, whose settings were checked when it was written.
 */
export function roundTripProblems(config: ExperimentConfig): RoundTripProblem[] {
  const known = roundTrips.get(config);
  if (known) return known;
  const problems: RoundTripProblem[] = [];
  for (const s of config.stages) {
    const again = s.definition.settings.safeParse(s.settings);
    if (!again.success || JSON.stringify(canonical(again.data)) !== JSON.stringify(canonical(s.settings))) {
      problems.push({
        stage: s.id,
        message: `${s.id}: its resolved settings do not validate to themselves again, so this run cannot be resumed (a bug in the ${s.type} stage's schema)`,
      });
    }
  }
  roundTrips.set(config, problems);
  return problems;
}

/** The entry for a loaded config, or undefined when it must not be cached. */
function entryOf(config: ExperimentConfig, key: string): Entry | undefined {
  if (config.modules.length > 0 || roundTripProblems(config).length > 0) return undefined;
  const { stages, ...rest } = config;
  const plain = {
    ...rest,
    stages: stages.map(({ type, id, capacity, settings }) => ({ type, id, capacity, settings })),
  };
  if (!jsonExact(plain)) return undefined;
  return { format: FORMAT, key, config: plain, yaml: resolvedYaml(config) };
}

/**
 * Whether JSON carries `value` exactly: null, booleans, strings, finite numbers (not −0), dense
 * arrays and plain objects of those — no undefined, NaN, Infinity, typed arrays or class instances.
 */
export function jsonExact(value: unknown): boolean {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!(i in value) || !jsonExact(value[i])) return false;
    return true;
  }
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every(jsonExact);
}

function readEntry(
  at: string,
  key: string,
  file: string,
  stages: readonly StageDefinition[],
): ExperimentConfig | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(readFileSync(at, 'utf8')) as Entry;
  } catch {
    return undefined; // absent, or unreadable: a full load
  }
  if (entry?.format !== FORMAT || entry.key !== key || typeof entry.yaml !== 'string') return undefined;
  const definitions = new Map(stages.map((d) => [d.type, d]));
  const resolved: ExperimentConfig['stages'] = [];
  for (const s of entry.config?.stages ?? []) {
    const definition = definitions.get(s.type);
    if (!definition) return undefined;
    resolved.push({ ...s, definition });
  }
  const config: ExperimentConfig = { ...entry.config, file, stages: resolved };
  roundTrips.set(config, []);
  rememberResolvedYaml(config, entry.yaml);
  return config;
}

function writeEntry(at: string, entry: Entry): void {
  const dir = join(at, '..');
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(at, JSON.stringify(entry));
    const names = readdirSync(dir).filter((n) => n.endsWith('.json'));
    if (names.length <= MOST_ENTRIES) return;
    const byAge = names.map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs })).sort((a, b) => a.t - b.t);
    for (const { n } of byAge.slice(0, names.length - MOST_ENTRIES)) rmSync(join(dir, n), { force: true });
  } catch {
    // A cache that cannot be written costs a full load next time, nothing more.
  }
}
