/**
 * The certificate authorities rxtrain's own TLS connections trust (downloads, `rediss://`), when
 * bin/rxtrain.js has put off NODE_EXTRA_CA_CERTS.
 *
 * Node 20 reads and parses every certificate in NODE_EXTRA_CA_CERTS as it starts, before any
 * JavaScript runs, whether or not the process opens a TLS connection. Many CI images and corporate
 * machines point it at the system bundle (~140 certificates): measured on the machines rxtrain is
 * benchmarked on, that is 35-40 ms of every start (`node -e 0`: 0.09 s with it, 0.05 s without).
 * Most rxtrain commands never open one, so the first line of bin/rxtrain.js starts Node without
 * the variable and hands its value over (`DEFERRED_CA_CERTS`); the bin puts it back in the
 * environment for the processes rxtrain starts, and this module reads the file when a connection
 * first needs it: Node's own roots plus the file's certificates, as Node would have trusted.
 *
 * Without that hand-over (no bin, or no NODE_EXTRA_CA_CERTS) there is nothing to add: Node's own
 * store, which then holds any extra certificates already, serves. A user stage that opens its own
 * TLS connections inside a run gets Node's default roots; `ca: trustedCertificates()` gives it
 * the same trust as rxtrain's.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

/** Where bin/rxtrain.js leaves the deferred file's path (an empty string: none was set). */
export const DEFERRED_CA_CERTS = Symbol.for('rxtrain.deferredCaCerts');

let trusted: { file: string; ca: string[] } | undefined;
let context: SecureContext | undefined;

/**
 * The `ca` option for a TLS connection when NODE_EXTRA_CA_CERTS was deferred, read once; undefined
 * when Node's default store already holds what the user asked for. A file that cannot be read is
 * ignored with Node's own warning, as Node ignores it at start.
 */
export function trustedCertificates(): string[] | undefined {
  const file = (globalThis as Record<symbol, unknown>)[DEFERRED_CA_CERTS];
  if (typeof file !== 'string' || file === '') return undefined;
  if (trusted?.file !== file) {
    const extra: string[] = [];
    try {
      extra.push(readFileSync(file, 'utf8'));
    } catch (error) {
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(error as Error).message}`);
    }
    trusted = { file, ca: [...rootCertificates, ...extra] };
    context = undefined;
  }
  return trusted.ca;
}

/**
 * TLS options for rxtrain's connections: with NODE_EXTRA_CA_CERTS put off, one secure context
 * that trusts `trustedCertificates()`, built on first use and shared (a `ca` list on each
 * connection would parse the ~280 certificates again every time); otherwise none.
 */
export function deferredTrust(): { secureContext?: SecureContext } {
  const ca = trustedCertificates();
  if (!ca) return {};
  context ??= createSecureContext({ ca });
  return { secureContext: context };
}
