/**
 * The live page: the report's sections (src/report/page.ts) for every indexed run, rendered once
 * per change however many browsers watch, and a small script that swaps in the sections a
 * server-sent event brings. The script is inline and allowed by its hash alone; it only ever
 * talks to /events on the page's own origin.
 *
 * Pictures (weight templates, misclassified digits) need the run's data stages, which takes a
 * fraction of a second: they are drawn once a run has its final weights, one run at a time, and
 * kept until its files change.
 */
import { createHash } from 'node:crypto';
import type { StageDefinition } from '../pipeline/stage.js';
import { compareSettings, flattenConfig, runLabels } from '../report/compare.js';
import { escapeHtml as esc } from '../report/escape.js';
import { type PageSection, pageSections, type RunPictures, renderPage } from '../report/page.js';
import { picturesOf } from '../report/report.js';
import type { RunData } from '../report/runDir.js';
import { describeError } from '../util/errors.js';
import type { RunIndex } from './runIndex.js';

/** Files of a run the server hands out, by name: nothing else in a run directory is served. */
export const RUN_FILES = [
  'events.ndjson',
  'config.yaml',
  'summary.json',
  'run.json',
  'model.json',
  'weights.f32',
];

/**
 * Swaps in each section an `update` event carries (by id), drops the run sections no longer
 * listed, and keeps the order; reconnects by itself after the server went away, backing off to
 * 30 s. A folded config that was open stays open.
 */
export const CLIENT_SCRIPT = `(() => {
  const badge = document.getElementById('live-status');
  const main = document.querySelector('main');
  const say = (state, text) => { badge.dataset.state = state; badge.textContent = text; };
  const apply = (update) => {
    for (const { id, html } of update.sections) {
      const template = document.createElement('template');
      template.innerHTML = html;
      const fresh = template.content.firstElementChild;
      if (!fresh) continue;
      const old = document.getElementById(id);
      if (!old) { main.append(fresh); continue; }
      for (const open of old.querySelectorAll('details[open][data-fold]'))
        for (const twin of fresh.querySelectorAll('details[data-fold]'))
          if (twin.dataset.fold === open.dataset.fold) twin.open = true;
      old.replaceWith(fresh);
    }
    const order = update.order;
    const keep = new Set(order);
    for (const el of [...main.children]) if (!keep.has(el.id)) el.remove();
    if ([...main.children].some((el, i) => el.id !== order[i]))
      for (const id of order) { const el = document.getElementById(id); if (el) main.append(el); }
  };
  let retry = 1000;
  const connect = () => {
    const source = new EventSource('/events');
    source.addEventListener('update', (e) => apply(JSON.parse(e.data)));
    source.onopen = () => { retry = 1000; say('live', 'live'); };
    source.onerror = () => {
      say('reconnecting', 'reconnecting…');
      if (source.readyState !== EventSource.CLOSED) return;
      setTimeout(connect, retry);
      retry = Math.min(2 * retry, 30000);
    };
  };
  connect();
})();`;

/** The page's policy: the report's, plus its one script (by hash) and its one connection (/events). */
export const LIVE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(CLIENT_SCRIPT).digest('base64')}'`,
  "connect-src 'self'",
  'img-src data:',
  "style-src 'unsafe-inline'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface LivePageOptions {
  cacheDir: string;
  stages?: readonly StageDefinition[];
  /** Told when pictures are drawn, so the page is sent again. */
  onChange: () => void;
  onWarning?: (message: string) => void;
}

interface Drawn {
  /** What the pictures were drawn from (picturesKey). */
  from: string;
  pictures: RunPictures;
}

/** The pictures depend on the final weights, the last evaluation's examples and the data stages. */
function picturesKey(run: RunData): string {
  return `${run.status}:${run.model?.step}:${run.model?.weights.length}:${run.evals.length}:${run.configText?.length}`;
}

export class LivePage {
  private readonly drawn = new Map<string, Drawn>();
  private readonly queue = new Map<string, { run: RunData; from: string }>();
  private inFlight?: string;
  private cache?: { stamp: string; sections: PageSection[] };

  constructor(
    private readonly index: RunIndex,
    private readonly options: LivePageOptions,
  ) {}

  /** Every section of the page, rendered at most once per change of the runs. */
  sections(): PageSection[] {
    const indexed = this.index.runs();
    const stamp = indexed
      .map((r) => `${r.tail.key}:${r.tail.version}:${this.drawn.get(r.tail.key)?.from ?? ''}`)
      .join(',');
    if (this.cache?.stamp === stamp) return this.cache.sections;
    const present = new Set(indexed.map((r) => r.tail.key));
    for (const key of this.drawn.keys()) if (!present.has(key)) this.drawn.delete(key);
    // A copy of each run's data: labels are set per page, and tails keep theirs for later pages.
    const runs: RunData[] = indexed.map((r) => ({ ...r.tail.snapshot() }));
    const comparison = compareSettings(runs.map((r) => flattenConfig(r.configText)));
    const labels = runLabels(
      runs.map((r) => r.dirName),
      comparison,
    );
    runs.forEach((run, i) => {
      run.label = labels[i]!;
    });
    const pictures = runs.map((run) => this.picturesFor(run));
    const sections = [
      {
        id: 'subtitle',
        html: `<p class="muted" id="subtitle">${this.subtitle(runs.length)}</p>`,
      },
      ...pageSections(runs, pictures, comparison).map((s) =>
        s.id.startsWith('run-') ? { ...s, html: withFileLinks(s.html, s.id.slice(4)) } : s,
      ),
    ];
    this.cache = { stamp, sections };
    return sections;
  }

  /** The whole page, as the first request gets it. */
  html(): string {
    const [subtitle, ...sections] = this.sections();
    return renderPage(
      {
        title: 'rxtrain live',
        subtitle: subtitle!.html.replace(/^<p[^>]*>|<\/p>$/g, ''),
        live: { script: CLIENT_SCRIPT },
      },
      sections,
    );
  }

  private subtitle(count: number): string {
    const roots = this.index.roots.map((r) => `<code>${esc(r)}</code>`).join(', ');
    return `${count} run${count === 1 ? '' : 's'} under ${roots}, updated as their event logs grow`;
  }

  private picturesFor(run: RunData): RunPictures {
    if (run.status === 'running' || !run.model)
      return { pending: 'Drawn when the run has finished and written its final weights.' };
    const from = picturesKey(run);
    const done = this.drawn.get(run.key);
    if (done?.from === from) return done.pictures;
    if (this.inFlight !== `${run.key}@${from}`) this.queue.set(run.key, { run, from });
    this.pump();
    return done?.pictures ?? { pending: 'Drawing…' };
  }

  /** Draw the next run's pictures in the background: one at a time, as each runs its data stages. */
  private pump(): void {
    if (this.inFlight) return;
    const next = this.queue.entries().next();
    if (next.done) return;
    const [key, { run, from }] = next.value;
    this.queue.delete(key);
    this.inFlight = `${key}@${from}`;
    void picturesOf(run, {
      cacheDir: this.options.cacheDir,
      stages: this.options.stages,
      onWarning: this.options.onWarning,
    })
      .catch(
        (error): RunPictures => ({ pending: `The pictures could not be drawn: ${describeError(error)}` }),
      )
      .then((pictures) => {
        this.drawn.set(key, { from, pictures });
        this.inFlight = undefined;
        this.options.onChange();
        this.pump();
      });
  }
}

/** The run's own files, linked under its heading. */
function withFileLinks(html: string, key: string): string {
  const links = RUN_FILES.map((f) => `<a href="/runs/${esc(key)}/${f}">${f}</a>`).join(' · ');
  return html.replace('</code></p>', `</code> · ${links}</p>`);
}
