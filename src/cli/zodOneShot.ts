/**
 * The commands that validate configs import this first. A command validates each config once or
 * twice, and zod's JIT compiles a parser per object schema (`new Function`) on the first parse:
 * more than that parse costs, and on every start, since a V8 code cache cannot keep such code
 * (1-3 ms of loading the default config, measured in process). Interpreted parsing returns the
 * same results and issues. The CLI's processes only: the package, imported as a library, leaves
 * zod's settings to its user. In the bundle zod loads only when first needed (util/zod.ts): the
 * setting is applied then.
 */
import { configureZod } from '../util/zod.js';

configureZod({ jitless: true });
