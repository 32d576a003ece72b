/**
 * Sweep files: YAML in, a validated sweep out. Like an experiment (pipeline/config.ts), every
 * problem is reported at once, each with its line and column and key path:
 *   1. YAML syntax;  2. the top level and each parameter's domain;  3. the method (a grid needs
 *   finite domains, random sampling a count);  4. the base experiment with `fixed` and `--set`
 *   applied, its own problems reported at the `fixed` entry (or `--set`) that caused them;
 *   5. each parameter names a real setting of the base;  6. the metric is evaluated, and ASHA has
 *   the periodic evaluations and signal checkpoints it stops and resumes trials with.
 * A parameter *value* that a stage rejects is not an error of the sweep: that trial fails, with its
 * error line, and the others run.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { stringify } from 'yaml';
import { type ExperimentConfig, loadConfig } from '../pipeline/config.js';
import { type Locator, sortIssues } from '../pipeline/configLocator.js';
import type { StageDefinition } from '../pipeline/stage.js';
import { parseYamlSource, plainValues, readYamlFile } from '../pipeline/yamlSource.js';
import { ConfigError, type ConfigIssue } from '../util/errors.js';
import { checkBaseFits } from './baseChecks.js';
import {
  finiteValues,
  gridSize,
  kindsOf,
  MAX_RANGE_VALUES,
  MAX_TRIALS,
  type Parameter,
  rangeLength,
} from './searchSpace.js';
import { type AshaSpec, DOMAIN_KINDS, parameterSchema, sweepSchema } from './sweepSchema.js';

export interface SweepSpec {
  /** The sweep file (absolute) and its text, as read. */
  file: string;
  text: string;
  name: string;
  /** The experiment the trials run: a file, or an inline one written to `file` by the sweep. */
  base: { file: string; text: string; inline: boolean };
  /** `fixed` as `--set` overrides, then the command line's own. */
  fixed: string[];
  cliOverrides: string[];
  parameters: Parameter[];
  method: 'grid' | 'random';
  count?: number;
  seed: number;
  metric: string;
  metricSplit: string;
  metricName: 'accuracy' | 'loss' | 'f1';
  mode: 'max' | 'min';
  scheduler?: AshaSpec;
  /** The base with `fixed` and `--set` applied: what every trial varies. */
  baseConfig: ExperimentConfig;
  stages: readonly StageDefinition[];
}

export interface LoadSweepOptions {
  /** The stage definitions the base may name (user modules add their own). */
  stages: readonly StageDefinition[];
  /** `--set` overrides of the base experiment, applied to every trial. */
  overrides?: readonly string[];
  /** Text to use instead of reading `file` (`sweep resume` reads the copy in the sweep directory). */
  text?: string;
  /** Where an inline base is written for the trials to run, given the sweep's name. */
  inlineBaseFile: (name: string) => string;
}

/** A value as the `--set` override that gives it: JSON is YAML, so the child parses it back exactly. */
export function overrideOf(key: string, value: unknown): string {
  return `${key}=${JSON.stringify(value)}`;
}

export async function loadSweep(file: string, options: LoadSweepOptions): Promise<SweepSpec> {
  const path = resolve(file);
  const text = options.text ?? readYamlFile(file, 'sweep file');
  const source = parseYamlSource(file, text, 'sweep file');
  const { locate, issues } = source;
  const none = new Map<string, string>();

  // Phase 2: the top level, then each parameter's domain against its own schema (for its hints).
  const raw = (plainValues(source, file) ?? {}) as Record<string, unknown>;
  const top = sweepSchema.safeParse(raw);
  let settings = top.success ? top.data : undefined;
  if (!top.success) {
    for (const i of top.error.issues) issues.push(...locate.issues([], i, sweepSchema, none));
    // The rest without the keys that failed, so that the later phases still report their problems.
    const bad = new Set(top.error.issues.map((i) => String(i.path[0] ?? '')));
    const rest = sweepSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => !bad.has(k))));
    settings = rest.success ? rest.data : undefined;
  }
  const parameters: Parameter[] = [];
  const rawParameters = raw.parameters && typeof raw.parameters === 'object' ? raw.parameters : {};
  for (const [key, value] of Object.entries(rawParameters as Record<string, unknown>)) {
    const at = ['parameters', key];
    const parsed = parameterSchema.safeParse(value);
    if (!parsed.success) {
      for (const i of parsed.error.issues) issues.push(...locate.issues(at, i, parameterSchema, none));
      continue;
    }
    const kinds = kindsOf(parsed.data);
    if (kinds.length !== 1) {
      issues.push(
        locate.at(
          at,
          `expected exactly one of ${DOMAIN_KINDS.join(', ')}${kinds.length ? `; got ${kinds.join(' and ')}` : ''}`,
        ),
      );
      continue;
    }
    const range = parsed.data.range;
    if (range && rangeLength(range.min, range.max, range.step) > MAX_RANGE_VALUES) {
      issues.push(
        locate.at([...at, 'range'], `more than ${MAX_RANGE_VALUES.toLocaleString('en-US')} values`),
      );
      continue;
    }
    parameters.push({ key, kind: kinds[0]!, spec: parsed.data });
  }

  // Phase 3: the method.
  if (settings?.method === 'random' && settings.count === undefined)
    issues.push(locate.at(['method'], 'method random needs a count (how many trials to draw)', 'count'));
  if (settings?.method === 'grid') {
    if (settings.count !== undefined)
      issues.push(locate.at(['count'], 'count is for method: random (a grid runs every combination)'));
    for (const p of parameters) {
      if (!finiteValues(p))
        issues.push(
          locate.at(
            ['parameters', p.key, p.kind],
            `method grid needs a finite domain (values, choice or range); ${p.kind} can only be sampled (method: random)`,
          ),
        );
    }
    if (parameters.every((p) => finiteValues(p)) && gridSize(parameters) > MAX_TRIALS)
      issues.push(
        locate.at(
          ['parameters'],
          `the grid has ${gridSize(parameters).toLocaleString('en-US')} trials (at most ${MAX_TRIALS.toLocaleString('en-US')})`,
        ),
      );
  }

  const name = settings?.name ?? basename(path, extname(path));
  // Phase 4: the base, with `fixed` and the command line's overrides.
  let base: SweepSpec['base'] | undefined;
  if (typeof raw.base === 'string' && raw.base !== '') {
    const baseFile = resolve(dirname(path), raw.base);
    try {
      base = { file: baseFile, text: readFileSync(baseFile, 'utf8'), inline: false };
    } catch (error) {
      issues.push(locate.at(['base'], `cannot read ${baseFile} (${(error as NodeJS.ErrnoException).code})`));
    }
  } else if (raw.base && typeof raw.base === 'object' && !Array.isArray(raw.base)) {
    base = { file: options.inlineBaseFile(name), text: stringify(raw.base), inline: true };
  }
  const fixed = Object.entries(settings?.fixed ?? {}).map(([k, v]) => overrideOf(k, v));
  const cliOverrides = [...(options.overrides ?? [])];
  let baseConfig: ExperimentConfig | undefined;
  // Without the overrides, when they break it: enough to check that the parameters name settings.
  let bareBase: ExperimentConfig | undefined;
  if (base) {
    const load = (overrides: string[]) =>
      loadConfig(base!.file, { stages: options.stages, overrides, text: base!.text });
    try {
      baseConfig = await load([...fixed, ...cliOverrides]);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...baseIssues(error, base, locate, settings?.fixed ?? {}));
      if (fixed.length + cliOverrides.length > 0) bareBase = await load([]).catch(() => undefined);
    }
  }

  // Phases 5 and 6: the parameters, the metric and the scheduler against the base.
  if (settings && (baseConfig ?? bareBase))
    issues.push(...checkBaseFits((baseConfig ?? bareBase)!, parameters, settings, locate, !baseConfig));
  if (issues.length > 0 || !settings || !base || !baseConfig) throw new ConfigError(file, sortIssues(issues));
  const [metricSplit, metricName] = settings.metric.split('.') as [string, SweepSpec['metricName']];
  return {
    file: path,
    text,
    name,
    base,
    fixed,
    cliOverrides,
    parameters,
    method: settings.method,
    count: settings.count,
    seed: settings.seed,
    metric: settings.metric,
    metricSplit,
    metricName,
    mode: settings.mode ?? (metricName === 'loss' ? 'min' : 'max'),
    scheduler: settings.scheduler,
    baseConfig,
    stages: options.stages,
  };
}

/**
 * The base's own problems, where the user can fix them: a `fixed` entry's at that entry, a
 * `--set`'s at the override, an inline base's at its place in the sweep file, and a base file's
 * with that file's line and column.
 */
function baseIssues(
  error: ConfigError,
  base: SweepSpec['base'],
  locate: Locator,
  fixed: Record<string, unknown>,
): ConfigIssue[] {
  const fixedByOrigin = new Map(Object.entries(fixed).map(([k, v]) => [`--set ${overrideOf(k, v)}`, k]));
  return error.issues.map((issue) => {
    const fixedKey = issue.origin ? fixedByOrigin.get(issue.origin) : undefined;
    if (fixedKey !== undefined)
      return { ...locate.at(['fixed', fixedKey], issue.message), path: `fixed.${fixedKey} (${issue.path})` };
    if (issue.origin) return { path: issue.path, message: issue.message, origin: issue.origin };
    if (base.inline)
      return { ...locate.at(['base', ...parsePath(issue.path)], issue.message), path: `base.${issue.path}` };
    const where = issue.line === undefined ? base.file : `${base.file}:${issue.line}:${issue.column ?? 1}`;
    return { path: issue.path, message: issue.message, origin: where };
  });
}

/** `stages[3].lr` → ['stages', 3, 'lr']. */
function parsePath(path: string): (string | number)[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}
