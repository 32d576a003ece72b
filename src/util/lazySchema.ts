import { type Zod, zod } from './zod.js';

/**
 * A schema built on first use: `lazySchema((z) => z.strictObject(…))` stands for the schema
 * (every property, method and `instanceof` goes to it) but builds it, handing the builder zod's
 * namespace, and so loads zod (util/zod.ts), only when something first asks. Methods are bound to the built schema, so what
 * they derive from it (`.optional()`, `.prefault()`) is an ordinary schema. What keys a map by the
 * object itself, as zod's registries and JSON Schema output do, must be given the built schema:
 * `built(schema)`, also for one placed as it is inside another.
 */
const builders = new WeakMap<object, () => object>();

export function lazySchema<T extends object>(build: (z: Zod) => T): T {
  let made: T | undefined;
  const real = (): T => {
    made ??= build(zod());
    return made;
  };
  const standIn = new Proxy({} as T, {
    get(_, key) {
      const target = real();
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
    has: (_, key) => Reflect.has(real(), key),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor(_, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(real(), key);
      // The stand-in's own target has no such property: it may only report it as configurable.
      if (descriptor) descriptor.configurable = true;
      return descriptor;
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
    set: (_, key, value) => Reflect.set(real(), key, value),
  });
  builders.set(standIn, real);
  return standIn;
}

/** The schema itself: built now if `schema` is a `lazySchema` stand-in, else `schema`. */
export function built<T>(schema: T): T {
  const real = typeof schema === 'object' && schema !== null ? builders.get(schema) : undefined;
  return real ? (real() as T) : schema;
}
