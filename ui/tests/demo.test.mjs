// The screens against `bondgate demo`, the README's main command: the whole
// floor simulated on its real transports (pty scales, TCP and serial
// printers, relays behind the edge bridges, PDAs on MQTT) with its robots
// at work. The manager's dashboard, opened once and never reloaded, follows
// the floor as parcels are picked, packed, released and let out; every
// device the server knows is on it as the API reports it; the books
// balance. The gate guard sees the lanes' decisions arrive.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEMO_PASSWORDS, startDemo } from './server.mjs';
import { assertAccessible, assertNoProblems, launch, logInVia, newPage, shot } from './browser.mjs';

/** A debug build on two busy cores: the first parcels leave within a few minutes. */
const FLOOR_MS_MAX = 240_000;

let demo;
let browser;
let manager;

async function loginWhenSeeded(username) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${demo.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: DEMO_PASSWORDS[username] }),
    });
    if (res.ok) return (await res.json()).token;
    assert.ok(Date.now() < deadline, `${username} cannot log in to the demo: ${res.status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function get(token, path) {
  const res = await fetch(`${demo.url}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, path);
  return res.json();
}

before(async () => {
  const [d, b] = await Promise.allSettled([startDemo(['--order-every-secs', '2']), launch()]);
  demo = d.value;
  browser = b.value;
  if (d.status === 'rejected') throw d.reason;
  if (b.status === 'rejected') throw b.reason;
  manager = await loginWhenSeeded('manager');
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

const count = (page, stage) => page.getAttribute(`#stages [data-stage="${stage}"]`, 'data-count').then(Number);

test('the dashboard follows the simulated floor live, every device and the books as the API has them', { timeout: FLOOR_MS_MAX + 60_000 }, async () => {
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await logInVia(page, demo, 'manager', DEMO_PASSWORDS.manager, '/dashboard');
  await page.waitForSelector('#main[data-ready]');
  await page.waitForSelector('#live[data-live="on"]');
  await page.evaluate(() => (window.neverReloaded = true));

  // Parcels leave through the gates while the page watches.
  await page.waitForFunction(() => Number(document.querySelector('#stages [data-stage="shipped"]').dataset.count) >= 2, null, { timeout: FLOOR_MS_MAX, polling: 500 });
  await page.waitForFunction(() => Number(document.querySelector('figure[data-series="exits"]').dataset.total) >= 2, null, { polling: 500 });
  assert.ok(Number(await page.getAttribute('figure[data-series="parcels"]', 'data-total')) >= 2);
  assert.ok(Number(await page.getAttribute('figure[data-series="pick_lines"]', 'data-total')) >= 2);
  assert.ok((await page.locator('#gatelog-rows tr[data-result="open"]').count()) >= 2);
  assert.equal(await page.evaluate(() => window.neverReloaded), true, 'the page was never reloaded');
  const api = await get(manager, '/dashboard');
  const shipped = api.pipeline.find((s) => s.stage === 'shipped').count;
  assert.ok(Math.abs(shipped - (await count(page, 'shipped'))) <= 2, `page ${await count(page, 'shipped')} vs API ${shipped}`);

  // Every device the server knows is on the page, online or not as the API says.
  const devices = await get(manager, '/devices');
  assert.ok(devices.some((d) => d.health), 'the edge bridges report their health');
  for (const d of devices) {
    const row = `#device-rows tr[data-device="${d.device}"]`;
    await page.waitForSelector(row);
    if (d.online && (!d.health || d.health.ok || !d.health.reported)) await page.waitForSelector(`${row}[data-status="online"]`);
  }
  for (const g of await get(manager, '/gates')) await page.waitForSelector(`#device-rows tr[data-device="${g.id}"]`);
  for (const s of await get(manager, '/pack-stations')) await page.waitForSelector(`#device-rows tr[data-device="Scale ${s.id}"]`);

  // The bonded ledger balances and the books match the movements.
  await page.waitForSelector('#ledger-summary[data-balanced="true"]');
  const ledger = await get(manager, '/inventory/reconciliation');
  assert.ok(ledger.length >= 1 && ledger.every((r) => r.balanced));
  assert.equal(await page.locator('#ledger-rows tr[data-balanced="false"]').count(), 0);
  await shot(page, 'demo-dashboard');
  await assertAccessible(page, 'dashboard on the demo floor');
  assertNoProblems(page);
  await page.context().close();
});

test('the gate guard sees the lanes decide, live', { timeout: FLOOR_MS_MAX }, async () => {
  const page = await newPage(browser);
  await logInVia(page, demo, 'guard', DEMO_PASSWORDS.guard, '/gate');
  await page.waitForSelector('#main[data-ready]');
  await page.waitForSelector('#live[data-live="on"]');
  const before = await page.locator('#recent li').count();
  await page.waitForFunction((n) => document.querySelectorAll('#recent li').length > n, before, { timeout: FLOOR_MS_MAX - 10_000, polling: 500 });
  await page.waitForSelector('#result:not([data-result="none"])');
  await shot(page, 'demo-gate');
  assertNoProblems(page);
  await page.context().close();
});
