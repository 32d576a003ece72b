/** rxtrain's version. It lives in util/version.ts, where download/ may import it (util is below it). */
export { VERSION } from './util/version.js';
