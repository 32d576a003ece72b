/**
 * Debian's headless Chromium, driven by playwright-core, for the tests that open a page as a
 * reader does. Where Chromium is missing those tests are skipped, and their titles say why.
 */
import { existsSync } from 'node:fs';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { tempDir } from './index.js';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

/** A browser test's title, with the reason it was skipped when Chromium is missing. */
export function browserTitle(title: string): string {
  return hasChromium ? title : `${title} — SKIPPED: ${CHROMIUM} is missing (apt-get install -y chromium)`;
}

/**
 * A fresh headless Chromium with a profile of its own. A browser that stops answering fails the
 * test in seconds (30 s per action), not at ava's timeout.
 */
export async function launchChromium(): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(tempDir('rxtrain-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(30_000);
  return context;
}

/** A page, and what it asked for and complained about while a test looked. */
export interface WatchedPage {
  page: Page;
  /** Every URL the context requested, the page's own included. */
  requests: string[];
  /** Console errors and warnings, page errors, failed requests. */
  problems: string[];
}

/**
 * A new page of `context` that may load `url` and nothing else: any other request is aborted, so a
 * stray reference fails the test instead of passing unnoticed, and recorded.
 */
export async function pageOfOnly(context: BrowserContext, url: string): Promise<WatchedPage> {
  const requests: string[] = [];
  const problems: string[] = [];
  context.on('request', (r) => {
    requests.push(r.url());
  });
  await context.route(
    (u) => u.href !== url,
    (route) => route.abort(),
  );
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return { page, requests, problems };
}
