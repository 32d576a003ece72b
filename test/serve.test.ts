/**
 * `rxtrain serve` over HTTP, without a browser: it hands out only the listed runs' own files (no
 * path outside the given directories, whatever the URL), its server-sent events follow a log as it
 * grows, a run that appears and a run that is deleted, and bad input is one line and exit 2.
 * Waits are bounded polls on what the server says, never sleeps.
 */
import { appendFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import test from 'ava';
import { keyOf } from '../src/serve/runIndex.js';
import { RunTail } from '../src/serve/runTail.js';
import { type RunningServer, startServer } from '../src/serve/server.js';
import { runCli, tempDir } from './helpers/index.js';

const SECRET = 'TOP-SECRET-BYTES-4f1c';

let seq = 0;
const line = (e: Record<string, unknown>) =>
  `${JSON.stringify({ ...e, time: '2026-01-01T00:00:00.000Z', elapsedMs: seq, seq: seq++ })}\n`;
const trainEvent = (step: number) =>
  line({
    type: 'train',
    step,
    epoch: step / 938,
    samples: 64 * step,
    loss: 2 / step,
    accuracy: 0.9,
    lr: 0.1,
    samplesPerSec: 1,
  });

/** A run directory with a run-started event and `steps` train events. */
function makeRun(dir: string, steps: number): void {
  mkdirSync(dir, { recursive: true });
  let text = line({ type: 'run-started', run: 'x', config: 'hand-made', runDir: dir, version: '0' });
  for (let s = 1; s <= steps; s++) text += trainEvent(100 * s);
  writeFileSync(join(dir, 'events.ndjson'), text);
  writeFileSync(
    join(dir, 'config.yaml'),
    'name: hand-made\nstages:\n  - type: sgd\n    id: sgd\n    lr: 0.1\n',
  );
}

/** GET (or another method) with the path sent exactly as given: no client-side normalising. */
function raw(
  server: RunningServer,
  path: string,
  options: { method?: string; host?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: options.method ?? 'GET',
        headers: { host: options.host ?? `127.0.0.1:${server.port}` },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function waitFor<T>(what: string, probe: () => T | undefined, limitMs = 30_000): Promise<T> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Update {
  sections: { id: string; html: string }[];
  order: string[];
}

/** Reads /events: every `update` as it arrives, and the latest HTML of each section. */
function subscribe(server: RunningServer) {
  const updates: Update[] = [];
  const latest = new Map<string, string>();
  let response: IncomingMessage | undefined;
  const req = request({ host: '127.0.0.1', port: server.port, path: '/events' }, (res) => {
    response = res;
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^event: update\ndata: (.*)$/m.exec(message);
        if (!data) continue;
        const update = JSON.parse(data[1]!) as Update;
        for (const s of update.sections) latest.set(s.id, s.html);
        updates.push(update);
      }
    });
  });
  req.end();
  return {
    updates,
    latest,
    get contentType() {
      return response?.headers['content-type'];
    },
    close: () => req.destroy(),
  };
}

/** Points on the loss chart of the curves section. */
const points = (html: string | undefined) => {
  const loss = (html ?? '').split('data-chart="loss"')[1]?.split('</svg>')[0] ?? '';
  return loss.split('<circle class="point').length - 1;
};

test('only the listed runs’ own files are served: .., %2e%2e, absolute paths and symbolic links get 404 and no bytes', async (t) => {
  const base = tempDir();
  const root = join(base, 'runs');
  makeRun(join(root, 'a'), 2);
  writeFileSync(join(base, 'secret.txt'), SECRET);
  // A listed file name that is a link out of the run, and a "run" that is a link to a directory outside.
  symlinkSync(join(base, 'secret.txt'), join(root, 'a', 'summary.json'));
  const outside = join(base, 'outside-run');
  makeRun(outside, 1);
  writeFileSync(join(outside, 'config.yaml'), SECRET);
  symlinkSync(outside, join(root, 'linked'));

  const server = await startServer({ dirs: [root], port: 0, cacheDir: tempDir() });
  t.teardown(() => server.close());
  t.deepEqual(
    server.index.runs().map((r) => r.tail.dir),
    [join(root, 'a')],
    'the linked directory is not listed',
  );
  const key = keyOf(join(root, 'a'));
  const ok = await raw(server, `/runs/${key}/events.ndjson`);
  t.is(ok.status, 200, 'a listed run’s log is served');
  t.true(ok.body.includes('"type":"train"'));

  const secretPath = join(base, 'secret.txt');
  const refused = [
    `/runs/${key}/summary.json`,
    `/runs/${key}/../../secret.txt`,
    `/runs/${key}/%2e%2e/%2e%2e/secret.txt`,
    `/runs/${key}/..%2f..%2fsecret.txt`,
    `/runs/${key}/%2E%2E%2F%2E%2E%2Fsecret.txt`,
    '/../secret.txt',
    '/%2e%2e/%2e%2e/secret.txt',
    '/..%5c..%5csecret.txt',
    secretPath,
    `/${secretPath}`,
    `/runs/${key}/${encodeURIComponent(secretPath)}`,
    `/runs/${key}//${secretPath}`,
    `/runs/${keyOf(join(root, 'linked'))}/config.yaml`,
    `/runs/${keyOf(outside)}/config.yaml`,
    `/runs/${key}/checkpoints`,
    `/runs/${key}/run.lock`,
    `http://127.0.0.1:${server.port}${secretPath}`,
  ];
  for (const path of refused) {
    const r = await raw(server, path);
    t.is(r.status, 404, path);
    t.is(r.body, '', `${path}: no bytes`);
  }
  t.is((await raw(server, '/', { host: 'attacker.example:80' })).status, 421, 'a foreign Host is refused');
  t.is((await raw(server, '/', { method: 'POST' })).status, 405);
});

test('server-sent events follow a growing log, a new run and a deleted one; the server keeps serving', async (t) => {
  const root = tempDir();
  const a = join(root, 'a');
  makeRun(a, 2);
  const server = await startServer({
    dirs: [root],
    port: 0,
    cacheDir: tempDir(),
    rescanMs: 200,
    updateMs: 30,
  });
  t.teardown(() => server.close());
  const events = subscribe(server);
  t.teardown(events.close);

  await waitFor('the first update', () => events.latest.get('curves'));
  t.regex(events.contentType ?? '', /^text\/event-stream/);
  t.deepEqual(events.updates[0]!.order, ['runs', 'curves', `run-${keyOf(a)}`]);
  const before = points(events.latest.get('curves'));
  t.is(before, 2);

  // The log grows, a line at a time and half a line at the end: only whole lines count.
  appendFileSync(join(a, 'events.ndjson'), trainEvent(300) + trainEvent(400));
  const torn = trainEvent(500);
  appendFileSync(join(a, 'events.ndjson'), torn.slice(0, 20));
  await waitFor('two more points', () => points(events.latest.get('curves')) === 4);
  appendFileSync(join(a, 'events.ndjson'), torn.slice(20));
  await waitFor('the torn line, once whole', () => points(events.latest.get('curves')) === 5);

  const b = join(root, 'b');
  makeRun(b, 1);
  await waitFor('the new run', () => events.updates.at(-1)!.order.includes(`run-${keyOf(b)}`));
  appendFileSync(
    join(b, 'events.ndjson'),
    line({ type: 'run-finished', status: 'completed', steps: 100, durationMs: 5, exitCode: 0 }),
  );
  await waitFor('its status', () => events.latest.get(`run-${keyOf(b)}`)?.includes('data-status>completed<'));

  rmSync(b, { recursive: true, force: true });
  await waitFor('the deleted run gone', () => !events.updates.at(-1)!.order.includes(`run-${keyOf(b)}`));
  const page = await raw(server, '/');
  t.is(page.status, 200);
  t.false(page.body.includes(`run-${keyOf(b)}`));
  t.true(page.body.includes(`id="run-${keyOf(a)}"`));
});

test('a tail reads only whole lines, decodes a character split between reads, and starts over when the log is cut', (t) => {
  const dir = tempDir();
  makeRun(dir, 0);
  const tail = new RunTail(dir, 'k');
  t.true(tail.refresh());
  const named = line({ type: 'run-started', run: 'x', config: 'naïve-€', runDir: dir, version: '0' });
  const bytes = Buffer.from(named);
  const cut = bytes.indexOf(Buffer.from('€')) + 1; // inside the three bytes of €
  writeFileSync(join(dir, 'events.ndjson'), bytes.subarray(0, cut));
  t.true(tail.refresh());
  appendFileSync(
    join(dir, 'events.ndjson'),
    Buffer.concat([bytes.subarray(cut), Buffer.from(trainEvent(100))]),
  );
  t.true(tail.refresh());
  t.is(tail.snapshot().name, 'naïve-€');
  t.is(tail.snapshot().train.length, 1);
  writeFileSync(join(dir, 'events.ndjson'), trainEvent(50));
  t.true(tail.refresh());
  t.deepEqual(
    tail.snapshot().train.map((p) => p.step),
    [50],
  );
  rmSync(dir, { recursive: true, force: true });
  t.false(tail.refresh(), 'a deleted run says so');
});

test('rxtrain serve: a missing directory, a bad port and a port in use are one line and exit 2', async (t) => {
  const missing = await runCli(['serve', join(tempDir(), 'nope'), '--port', '0']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /^rxtrain: E_USAGE: .*nope: no such directory\n$/);
  const port = await runCli(['serve', tempDir(), '--port', '99999']);
  t.is(port.code, 2);
  t.is(port.stderr, 'rxtrain: E_USAGE: --port 99999: expected a port number from 0 to 65535\n');
  const server = await startServer({ dirs: [tempDir()], port: 0, cacheDir: tempDir() });
  t.teardown(() => server.close());
  const busy = await runCli(['serve', tempDir(), '--port', String(server.port)]);
  t.is(busy.code, 2);
  t.is(
    busy.stderr,
    `rxtrain: E_USAGE: port ${server.port} on 127.0.0.1 is in use (choose another with --port)\n`,
  );
});
