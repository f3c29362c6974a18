// Real headless Chromium (the distribution's package, no browser download)
// and what every page test checks: accessibility with axe-core, visible
// focus, no Content-Security-Policy violations, screenshots for a person.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = require('axe-core').source;
export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');

export async function launch() {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Containers and CI run as root without a user namespace sandbox.
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'],
  });
}

/**
 * A page in a fresh context (its own sessionStorage), with console errors
 * and CSP violations collected in `page.problems`.
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ locale: 'en-GB', viewport: { width: 1024, height: 800 }, ...options });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) page.problems.push(m.text());
  });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  return page;
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Logs in through the login page and waits for `next` to load. */
export async function logInVia(page, server, username, password, next) {
  await page.goto(`${server.url}/login?next=${encodeURIComponent(next)}`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.press('#password', 'Enter');
  await page.waitForURL(`${server.url}${next}`);
}

/** axe-core on the page as it is now: no serious or critical violation. */
export async function assertAccessible(page, what) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(bad, [], `${what}: accessibility violations`);
}

/** Tabs to `selector` and checks that its focus is drawn (an outline or ring of at least 2 px). */
export async function assertVisibleFocus(page, selector) {
  for (let i = 0; i < 30; i += 1) {
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) break;
    await page.keyboard.press('Tab');
  }
  const style = await page.evaluate((s) => {
    const el = document.activeElement;
    if (!el?.matches(s)) return null;
    const cs = getComputedStyle(el);
    return { outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth), shadow: cs.boxShadow };
  }, selector);
  assert.ok(style, `${selector} cannot be reached with Tab`);
  assert.ok((style.outline !== 'none' && style.width >= 2) || style.shadow !== 'none', `${selector} has no visible focus: ${JSON.stringify(style)}`);
}

/**
 * Types `code` into the focused scan box as a keyboard-wedge scanner does
 * (the box must have the focus: the scanner types wherever it is), ends
 * it with Enter, and waits for the page's answer sound and for the focus
 * to be back in the box. The page's last sound (`window.bondgateSounds`).
 */
export async function wedgeScan(page, code, timeout = 30_000) {
  const before = await page.evaluate(() => (window.bondgateSounds || []).length);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'scan', `focus before ${code}`);
  await page.keyboard.type(code);
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => (window.bondgateSounds || []).length > n, before, { timeout });
  await page.waitForFunction(() => document.activeElement.id === 'scan');
  return page.evaluate(() => window.bondgateSounds.at(-1));
}

export function assertNoProblems(page) {
  assert.deepEqual(page.problems, [], 'console errors or CSP violations on the page');
}
