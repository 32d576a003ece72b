/**
 * ava runs the compiled tests (`npm test` compiles them first), two files at a time on these
 * 2-core machines. The files that take longest start first (longest-processing-time order), so
 * that the two workers finish together instead of one waiting out a long file alone at the end;
 * the rest follow in name order. The list is ordered by each file's wall time run alone (seconds,
 * `npx ava <file>`, 2026-12-02); a file missing from it, or a name that no longer matches, only
 * loses its place in the order.
 */
const LONGEST_FIRST = [
  'sweep-queue', // 34 s: a real Redis, three workers, bundles through it
  'resume-signals', // 23 s
  'serve-browser', // 22 s: Chromium
  'sweep-run', // 18 s
  'resume-notebook', // 15 s
  'backpressure', // 14 s
  'resume-default', // 13 s
  'report-untrusted', // 13 s: Chromium
  'run-integrity', // 11 s
  'synth', // 10 s
  'fetch-permanent', // 10 s
  'schema', // 10 s
  'api-docs', // 10 s
  'report-browser', // 9 s: Chromium
  'cli-bundle', // 9 s
  'stageCache', // 9 s
  'fetch-lock', // 9 s
  'sweep-asha', // 8 s
];

const rank = (file) => {
  const name = file
    .split(/[\\/]/)
    .pop()
    .replace(/\.test\.js$/, '');
  const at = LONGEST_FIRST.indexOf(name);
  return at === -1 ? LONGEST_FIRST.length : at;
};

export default {
  files: ['dist/test/**/*.test.js'],
  nodeArguments: ['--enable-source-maps'],
  timeout: '5m',
  concurrency: 2,
  sortTestFiles: (a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0),
};
