/**
 * Debian's headless Chromium, driven by playwright-core, for the tests that open a page as a
 * reader does. Where Chromium is missing those tests are skipped, and their titles say why.
 */
import { existsSync } from 'node:fs';
import { type BrowserContext, chromium } from 'playwright-core';
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
