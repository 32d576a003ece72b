/**
 * The search space: each parameter's domain, walked as a grid (every combination, the first
 * parameter varying slowest, as nested loops in file order) or sampled at random from a seeded
 * generator. Trial i of a random sweep draws its values right after trial i−1's, so raising
 * `count` keeps the trials already drawn: a sweep extended that way reruns none of them.
 */
import { Prng } from '../util/random.js';
import { DOMAIN_KINDS, type DomainKind, type ParameterSpec } from './sweepSchema.js';

export interface Parameter {
  /** `<stageId>.<key>` or a top-level key, as in the sweep file. */
  key: string;
  kind: DomainKind;
  spec: ParameterSpec;
}

/** One trial's parameter values, keyed like the sweep file. */
export type Point = Record<string, unknown>;

/** Most values a `range` may expand to, and most trials a grid may have: a typo, not a sweep. */
export const MAX_RANGE_VALUES = 10_000;
export const MAX_TRIALS = 100_000;

/** The domain keys a spec sets (a valid spec sets exactly one). */
export function kindsOf(spec: ParameterSpec): DomainKind[] {
  return DOMAIN_KINDS.filter((k) => spec[k] !== undefined);
}

/** The values of a finite domain (values, choice, range); undefined for a distribution. */
export function finiteValues(p: Parameter): readonly unknown[] | undefined {
  const { spec } = p;
  if (p.kind === 'values') return spec.values!;
  if (p.kind === 'choice') return spec.choice!;
  if (p.kind === 'range') {
    const { min, max, step } = spec.range!;
    const n = rangeLength(min, max, step);
    // toPrecision(12) drops the float noise of min + i·step (0.30000000000000004 → 0.3).
    return Array.from({ length: n }, (_, i) => Number((min + i * step).toPrecision(12)));
  }
  return undefined;
}

export function rangeLength(min: number, max: number, step: number): number {
  return Math.floor((max - min) / step + 1e-9) + 1;
}

/** Every combination of the finite domains, the first parameter varying slowest. */
export function gridPoints(parameters: readonly Parameter[]): Point[] {
  let points: Point[] = [{}];
  for (const p of parameters) {
    const values = finiteValues(p)!;
    points = points.flatMap((point) => values.map((v) => ({ ...point, [p.key]: v })));
  }
  return points;
}

/** How many trials a grid has (without building them). */
export function gridSize(parameters: readonly Parameter[]): number {
  return parameters.reduce((n, p) => n * (finiteValues(p)?.length ?? 1), 1);
}

/** `count` points drawn from one generator seeded with `seed`, parameter by parameter in file order. */
export function randomPoints(parameters: readonly Parameter[], count: number, seed: number): Point[] {
  const rng = new Prng(seed);
  const points: Point[] = [];
  for (let i = 0; i < count; i++) {
    const point: Point = {};
    for (const p of parameters) point[p.key] = draw(p, rng);
    points.push(point);
  }
  return points;
}

function draw(p: Parameter, rng: Prng): unknown {
  const finite = finiteValues(p);
  if (finite) return finite[rng.int(finite.length)];
  const { spec } = p;
  if (p.kind === 'uniform') {
    const [a, b] = spec.uniform!;
    return a + rng.nextFloat() * (b - a);
  }
  if (p.kind === 'loguniform') {
    const [a, b] = spec.loguniform!;
    return Math.exp(Math.log(a) + rng.nextFloat() * (Math.log(b) - Math.log(a)));
  }
  const [a, b] = spec.int!;
  return a + rng.int(b - a + 1);
}

/** Keys whose value differs between points: the columns worth showing. */
export function varyingKeys(parameters: readonly Parameter[], points: readonly Point[]): string[] {
  return parameters
    .map((p) => p.key)
    .filter((key) => new Set(points.map((pt) => JSON.stringify(pt[key]))).size > 1);
}

/** A point as `key=value` pairs, values in JSON (`sgd.lr=0.3 sgd.schedule="cosine"`). */
export function describePoint(point: Point, keys: readonly string[] = Object.keys(point)): string {
  return keys.map((k) => `${k}=${formatValue(point[k])}`).join(' ');
}

export function formatValue(value: unknown): string {
  if (typeof value === 'number' && !Number.isInteger(value)) return String(Number(value.toPrecision(4)));
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
