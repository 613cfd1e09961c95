// Shared by every browser test: Debian's Chromium driven by playwright-core (no browser
// download), a phone-sized viewport, numbered screenshots, an axe-core check and the bytes
// each page transferred. The Rust harnesses (tests/*_e2e.rs) start the server and pass
// SURCLASS_E2E_BASE_URL and SURCLASS_E2E_SCREENSHOTS.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const baseUrl = () => {
  const url = process.env.SURCLASS_E2E_BASE_URL;
  if (!url) throw new Error('SURCLASS_E2E_BASE_URL is not set: run these through cargo test');
  return url.replace(/\/$/, '');
};

/** Starts Chromium and opens a page at the given viewport (a 390x844 phone by default). */
export async function openBrowser({ width = 390, height = 844, locale = 'en-GB' } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width, height }, locale });
  const page = await context.newPage();
  return { browser, context, page };
}

/** Saves `NN-name.png` in the folder named by SURCLASS_E2E_SCREENSHOTS (per suite). */
export function screenshotter(suite) {
  const dir = path.join(process.env.SURCLASS_E2E_SCREENSHOTS || 'screenshots', suite);
  mkdirSync(dir, { recursive: true });
  let step = 0;
  return async (page, name) => {
    step += 1;
    const file = path.join(dir, `${String(step).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}

/** Runs axe-core on the current page; returns the serious and critical violations. */
export async function seriousViolations(page) {
  await page.addScriptTag({ content: AXE_SOURCE });
  const result = await page.evaluate(async () => await window.axe.run(document));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * Loads `url` and returns the bytes transferred for the document and everything it pulled
 * in (encoded body sizes plus headers, as the network saw them).
 */
export async function transferredBytes(page, url) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  let total = 0;
  cdp.on('Network.loadingFinished', (event) => { total += event.encodedDataLength; });
  await page.goto(url, { waitUntil: 'networkidle' });
  await cdp.detach();
  return total;
}
