/**
 * zod, for the modules that build schemas: `zod()` gives its namespace. Here it is imported as
 * usual; in the bundle (scripts/bundle.ts) this module is replaced by one that loads zod at the
 * first call, so that a run whose config comes from the cache of validated configs
 * (pipeline/configCache.ts) never loads it: zod's own start and the building of the schemas cost
 * ~20-30 ms of each start. So the schemas that modules define are built lazily (`lazySchema`),
 * and zod's settings go through `configureZod`.
 */
import { z } from 'zod';

/** zod's namespace, as `zod()` gives it (a schema builder's parameter: util/lazySchema.ts). */
export type Zod = typeof z;

export function zod(): typeof z {
  return z;
}

/** `z.config(options)`: now, or in the bundle when zod is loaded. */
export function configureZod(options: Parameters<typeof z.config>[0]): void {
  z.config(options);
}
