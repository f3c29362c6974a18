// The manager's dashboard in headless Chromium against the real server:
// the pipeline, work per hour, devices, stock and the books as the floor
// left them; then, with the page open and never reloaded, a new order, a
// gate refusal and a customs release arrive live; a short pick's exception
// is dealt with from the page (the order cancelled, the bin counted); a lot
// close to expiry is flagged. Packers and guards are refused the page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './server.mjs';
import { adminToken, addUser, customsReceipt, login, ok, orderAndWave, orderInWave, packAtP1, pickAll, PASSWORD, SKU } from './seed.mjs';
import { assertAccessible, assertNoProblems, assertVisibleFocus, launch, logInVia, newPage, shot } from './browser.mjs';

let server;
let browser;
let admin;
let parcel;
let page;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launch()]);
  admin = await adminToken(server);
  await addUser(server, admin, 'mia', ['manager']);
  await addUser(server, admin, 'pia', ['picker']);
  await addUser(server, admin, 'pat', ['packer']);
  await addUser(server, admin, 'gus', ['guard']);
  // ORD-1 packed (no customs release yet), ORD-2 picked.
  await orderInWave(server, admin, 'ORD-1', 1);
  await pickAll(server, await login(server, 'pia'), 'TOTE-1', 1);
  parcel = await packAtP1(server, admin, await login(server, 'pat'), 'TOTE-1');
  await orderAndWave(server, admin, 'ORD-2', 1);
  await pickAll(server, await login(server, 'pia'), 'TOTE-2', 1);
});

after(async () => {
  await page?.context().close();
  await browser?.close();
  await server?.stop();
});

const stage = (name, count) => `#stages [data-stage="${name}"][data-count="${count}"]`;

test('a manager sees the pipeline, work per hour, devices, stock and the books', async () => {
  page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await logInVia(page, server, 'mia', PASSWORD, '/dashboard');
  await page.waitForSelector('#main[data-ready]');
  await page.waitForSelector('#live[data-live="on"]');
  const summary = await ok(server, admin, 'GET', '/dashboard');
  // Every tile says what the API says.
  for (const s of summary.pipeline) await page.waitForSelector(stage(s.stage, s.count));
  await page.waitForSelector(stage('awaiting_release', 1));
  await page.waitForSelector(stage('picked', 1));
  assert.match(await page.textContent('[data-stage="awaiting_release"] .stage-age'), /ORD-1/);
  // Work this hour: two pick lines, one parcel, no exit.
  assert.equal(await page.getAttribute('figure[data-series="pick_lines"]', 'data-total'), '2');
  assert.equal(await page.getAttribute('figure[data-series="parcels"]', 'data-total'), '1');
  assert.equal(await page.getAttribute('figure[data-series="exits"]', 'data-total'), '0');
  assert.equal(await page.locator('figure[data-series="parcels"] rect.bar').count(), 24);
  // The devices: the gate, the station's scale and printer.
  for (const name of ['G1', 'Scale P1', 'Printer P1']) await page.waitForSelector(`#device-rows tr[data-device="${name}"]`);
  // Stock: ten units received, wherever they are now; the books balance.
  assert.equal(await page.textContent('#tot-total'), '10');
  assert.equal(await page.getAttribute('#ledger-summary', 'data-balanced'), 'true');
  assert.equal(await page.locator(`#ledger-rows tr[data-sku="${SKU}"][data-balanced="true"]`).count(), 1);
  // A stage lists its orders, oldest first.
  await page.click('[data-stage="picked"]');
  await page.waitForSelector('#stage-orders-rows button[data-order="ORD-2"]');
  assert.equal(await page.getAttribute('[data-stage="picked"]', 'aria-pressed'), 'true');
  await shot(page, 'dashboard-1-start');
  await assertAccessible(page, 'dashboard');
  await assertVisibleFocus(page, '#stages button');
  assertNoProblems(page);
});

test('a new order, a gate refusal and a customs release arrive without a reload', async () => {
  const marker = await page.evaluate(() => (window.dashboardMarker = Math.random()));
  await orderAndWave(server, admin, 'ORD-3', 1);
  await page.waitForSelector(stage('picking', 1));

  const guard = await login(server, 'gus');
  const refused = await ok(server, guard, 'POST', '/gates/G1/scans', { code: parcel.waybill_no });
  assert.equal(refused.result, 'refused');
  await page.waitForSelector(`#gatelog-rows tr[data-result="refused"]`);
  assert.match(await page.textContent('#gatelog-rows tr'), new RegExp(refused.reason_en.slice(0, 20)));
  await page.waitForSelector(`#exception-list li[data-kind="gate_refusal"][data-id="${refused.id}"]`);

  await customsReceipt(server, admin, 'COP-ORD-1', 800, '20261123101500000');
  await page.waitForSelector(stage('released', 1));
  await page.waitForSelector(stage('awaiting_release', 0));
  // The order's customs state and its receipts, from the gate log's link.
  await page.click('#gatelog-rows button[data-order="ORD-1"]');
  await page.waitForSelector('#customs-view .customs-head[data-order="ORD-1"][data-state="released"]');
  assert.match(await page.textContent('#customs-view table'), /800/);
  assert.equal(await page.evaluate(() => window.dashboardMarker), marker, 'the page was never reloaded');
  await shot(page, 'dashboard-2-live');
  assertNoProblems(page);
});

test('a short pick is dealt with from the exception list: the order cancelled, the bin counted', async () => {
  // ORD-3's picker finds its bin empty and there is no stock elsewhere.
  const picker = await login(server, 'pia');
  let seq = 0;
  for (const barcode of ['start', 'TOTE-3', '#SHORT', '#EMPTY']) {
    seq += 1;
    await ok(server, picker, 'POST', '/pick-tasks/scan', { device: 'dash-pda', seq, barcode });
  }
  const short = '#exception-list li[data-kind="short_pick"]';
  await page.waitForSelector(short);
  await page.waitForSelector(stage('exception', 1));
  assert.match(await page.textContent(short), /ORD-3/);

  await page.click(`${short} button[data-action="cancel_order"]`);
  await page.waitForSelector(`${short} form[data-action="cancel_order"] input`);
  // A live update while the form is open does not wipe what is typed.
  await page.fill(`${short} form input`, 'no stock left for it');
  const refreshed = await page.getAttribute('#main', 'data-refreshed');
  await ok(server, admin, 'POST', '/locations', { code: 'A-09', zone: 'A', walk_seq: 9, kind: 'storage' }, 201);
  await page.waitForFunction((n) => document.querySelector('#main').dataset.refreshed !== n, refreshed);
  assert.equal(await page.inputValue(`${short} form input`), 'no stock left for it');
  await page.press(`${short} form input`, 'Enter');
  await page.waitForSelector(short, { state: 'detached' });
  const order = await ok(server, admin, 'GET', '/orders/ORD-3');
  assert.equal(order.state, 'cancelled');
  assert.equal(order.cancel_reason, 'no stock left for it');

  // The bin the picker found empty is counted: the books were right.
  const count = '#exception-list li[data-kind="count_request"]';
  await page.click(`${count} button[data-action="count_bin"]`);
  const field = `${count} form input[type="number"]`;
  await page.waitForSelector(field);
  const label = await page.textContent(`${count} form label`);
  const books = Number(/\d+\)$/.exec(label)[0].slice(0, -1));
  await page.fill(field, String(books));
  await shot(page, 'dashboard-3-count');
  await assertAccessible(page, 'dashboard, count form');
  await page.click(`${count} form button[type="submit"]`);
  await page.waitForSelector(count, { state: 'detached' });
  assert.deepEqual(await ok(server, admin, 'GET', '/inventory/count-requests'), []);
  assertNoProblems(page);
});

test('a lot close to its expiry is flagged, in Chinese too', async () => {
  const soon = new Date(Date.now() + 10 * 86400000).toISOString().slice(0, 10);
  await ok(server, admin, 'POST', '/receipts', {
    receipt_no: 'R-2', customs_doc_no: 'QD29242026I000000002',
    lines: [{ sku: SKU, bin: 'A-02', batch: 'B2', expiry: soon, qty: 3 }],
  }, 201);
  const row = `#stock-rows tr[data-batch="B2"][data-expiry="soon"]`;
  await page.waitForSelector(row);
  assert.match(await page.textContent(row), /days left/);
  assert.match(await page.textContent('#stock-expiry'), /1 lots expire within 30 days/);
  // Filtered to the bin.
  await page.fill('#stock-bin', 'A-02');
  await page.press('#stock-bin', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#stock-rows tr').length === 1);
  assert.equal(await page.textContent('#tot-total'), '3');
  await page.click('#lang-switch');
  await page.waitForFunction(() => document.documentElement.lang === 'zh-CN');
  assert.match(await page.textContent(row), /还剩/);
  assert.match(await page.textContent('#updated'), /^更新于 /);
  // What the server says about an exception is in Chinese too.
  assert.match(await page.textContent('#exception-list li[data-kind="gate_refusal"] .exception-detail'), /^闸口 G1 拒绝 /);
  assert.equal(await page.textContent('#dash-error'), '');
  await shot(page, 'dashboard-4-zh');
  await assertAccessible(page, 'dashboard in Chinese');
  assertNoProblems(page);
});

test('packers and guards are refused the dashboard and its API', async () => {
  for (const user of ['pat', 'gus']) {
    const p = await newPage(browser, { locale: 'zh-CN' });
    await logInVia(p, server, user, PASSWORD, '/dashboard');
    await p.waitForSelector('#denied:not([hidden])');
    assert.equal(await p.isHidden('#main'), true);
    const token = await login(server, user);
    const res = await fetch(`${server.url}/api/v1/dashboard`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 403);
    assertNoProblems(p);
    await p.context().close();
  }
});
