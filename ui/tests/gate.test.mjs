// The gate guard's screen in headless Chromium against the real server:
// an unknown parcel and a packed parcel without a customs release are
// refused, big and red, with the reason in Chinese and English; a decision
// made elsewhere arrives over the live feed; a picker is refused the page
// (and the API); the feed only carries what a role may read.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './server.mjs';
import { adminToken, addUser, call, customsReceipt, gateBridge, login, ok, orderAndWave, orderInWave, packAtP1, pickAll, PASSWORD } from './seed.mjs';
import { assertAccessible, assertNoProblems, assertVisibleFocus, launch, logInVia, newPage, shot } from './browser.mjs';

let server;
let browser;
let admin;
let parcel;
/** ORD-2's parcel, released by customs. */
let released;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launch()]);
  admin = await adminToken(server);
  await addUser(server, admin, 'gus', ['guard']);
  await addUser(server, admin, 'pia', ['picker']);
  await addUser(server, admin, 'pat', ['packer']);
  await orderInWave(server, admin, 'ORD-1', 1);
  await pickAll(server, await login(server, 'pia'), 'TOTE-1', 1);
  parcel = await packAtP1(server, admin, await login(server, 'pat'), 'TOTE-1');
  await orderAndWave(server, admin, 'ORD-2', 1);
  await pickAll(server, await login(server, 'pia'), 'TOTE-2', 1);
  released = await packAtP1(server, admin, await login(server, 'pat'), 'TOTE-2');
  await customsReceipt(server, admin, 'COP-ORD-2', 800, '20261123101500000');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Reads SSE frames from /api/v1/events as `token` until `want` matches one or `ms` pass. */
async function feed(token, ms, want = () => false) {
  const ctrl = new AbortController();
  const events = [];
  const timer = setTimeout(() => ctrl.abort(), ms);
  try {
    const res = await fetch(`${server.url}/api/v1/events`, { headers: { authorization: `Bearer ${token}` }, signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    let buf = '';
    const dec = new TextDecoder();
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type && data) {
          const e = { ...JSON.parse(data), type };
          events.push(e);
          if (want(e)) return events;
        } else if (block.startsWith(':')) {
          events.push({ comment: block });
        }
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') throw e;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return events;
}

test('a guard sees refusals big, in Chinese and English, and live decisions', async () => {
  const page = await newPage(browser);
  await logInVia(page, server, 'gus', PASSWORD, '/gate');
  await page.waitForSelector('#main[data-ready]');
  assert.equal(await page.inputValue('#gate-select'), 'G1');
  assert.equal(await page.getAttribute('#result', 'data-result'), 'none');
  await shot(page, 'gate-1-ready');
  await assertAccessible(page, 'gate page, ready');

  // The scanner types into the focused box and sends Enter.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'scan');
  await page.keyboard.type('NO-SUCH-PARCEL');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#result[data-result="refused"]');
  const [unknown] = await ok(server, admin, 'GET', '/gates/G1/decisions');
  assert.equal(unknown.code, 'NO-SUCH-PARCEL');
  assert.equal(await page.textContent('#result-word'), 'REFUSED: the gate stays shut');
  assert.equal(await page.textContent('#reason-en'), unknown.reason_en);
  assert.equal(await page.textContent('#reason-zh'), unknown.reason_zh);
  assert.ok(unknown.reason_zh.length > 0 && unknown.reason_en.length > 0);
  assert.equal(await page.textContent('#result-icon'), '✖');
  await shot(page, 'gate-2-unknown-refused');

  // A packed parcel whose 清单 has no release yet: refused, naming its order.
  await page.fill('#scan', parcel.waybill_no);
  await page.press('#scan', 'Enter');
  await page.waitForFunction((o) => document.querySelector('#result-order').textContent === o, 'ORD-1');
  const [held] = await ok(server, admin, 'GET', '/gates/G1/decisions');
  assert.equal(held.result, 'refused');
  assert.equal(held.package_no, parcel.package_no);
  assert.match(held.reason_code, /customs/);
  assert.equal(await page.getAttribute('#result', 'data-result'), 'refused');
  assert.equal(await page.textContent('#reason-zh'), held.reason_zh);
  assert.equal(await page.textContent('#reason-en'), held.reason_en);
  assert.equal(await page.textContent('#result-parcel'), parcel.package_no);
  assert.equal(await page.locator('#recent li').count(), 2);
  // Nothing left: the order is still held, the stock still locked.
  assert.equal((await ok(server, admin, 'GET', '/orders/ORD-1')).state, 'packed');
  await shot(page, 'gate-3-not-released');

  // A scan made elsewhere (the gate's other guard) arrives live.
  await page.waitForSelector('#live[data-live="on"]');
  const other = await ok(server, await login(server, 'gus'), 'POST', '/gates/G1/scans', { code: 'FROM-ELSEWHERE' });
  await page.waitForFunction(() => document.querySelector('#result-code').textContent === 'FROM-ELSEWHERE');
  assert.equal(await page.locator('#recent li').count(), 3);
  assert.equal(await page.textContent('#reason-en'), other.reason_en);

  // 中文: the page's words change, the guard's language comes first.
  await page.click('#lang-switch');
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(await page.textContent('#result-word'), '拒绝：闸机保持关闭');
  assert.equal(await page.evaluate(() => document.querySelector('#result-reasons').firstElementChild.id), 'reason-zh');
  await shot(page, 'gate-4-zh');
  await assertAccessible(page, 'gate page, refused, 中文');
  // An empty scan is a clear message, not a request.
  await page.press('#scan', 'Enter');
  assert.equal(await page.textContent('#scan-error'), '请先扫描包裹。');
  await assertVisibleFocus(page, '#lang-switch');
  assertNoProblems(page);
  await page.context().close();
});

test('a released parcel: amber fault while the gate bridge is silent, green open once it answers', async () => {
  const page = await newPage(browser);
  await logInVia(page, server, 'gus', PASSWORD, '/gate');
  await page.waitForSelector('#main[data-ready]');
  await page.waitForSelector('#live[data-live="on"]');
  // No bridge listens: the pulse is not confirmed, the gate counts as shut.
  await page.keyboard.type(released.waybill_no);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#result[data-result="fault"]', { timeout: 10_000 });
  const [fault] = await ok(server, admin, 'GET', '/gates/G1/decisions');
  assert.deepEqual([fault.result, fault.order_no], ['fault', 'ORD-2']);
  assert.equal(await page.textContent('#result-icon'), '⚠');
  assert.equal(await page.textContent('#result-word'), 'FAULT: the gate stays shut, nothing shipped');
  assert.equal(await page.textContent('#reason-en'), fault.reason_en);
  await page.waitForSelector('#gate-state[data-state="fault"]');
  assert.equal((await ok(server, admin, 'GET', '/orders/ORD-2')).state, 'packed');
  await shot(page, 'gate-6-fault');
  await assertAccessible(page, 'gate page, fault');

  // The bridge is back: the same parcel opens the gate and ships.
  const bridge = await gateBridge(server, 'G1');
  try {
    await page.keyboard.type(released.waybill_no);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#result[data-result="open"]', { timeout: 10_000 });
    const [open] = await ok(server, admin, 'GET', '/gates/G1/decisions');
    assert.deepEqual([open.result, open.output], ['open', 'confirmed']);
    assert.equal(await page.textContent('#result-icon'), '✔');
    assert.equal(await page.textContent('#result-word'), 'OPEN: the parcel may leave');
    assert.equal(await page.textContent('#reason-zh'), open.reason_zh);
    assert.equal(await page.textContent('#result-parcel'), released.package_no);
    assert.equal(bridge.commands.filter((c) => c.cmd === 'open').length, 1);
    assert.equal((await ok(server, admin, 'GET', '/orders/ORD-2')).state, 'shipped');
    // The confirmed pulse clears the alarm, live.
    await page.waitForSelector('#gate-state[data-state="closed"]');
    assert.equal(await page.isHidden('#gate-fault'), true);
    await page.waitForFunction(() => document.querySelector('#gate-counts').textContent === 'Confirmed pulses: 1 · Faults: 1');
    await shot(page, 'gate-7-open');
    await assertAccessible(page, 'gate page, open');
    // Once out, never again.
    await page.keyboard.type(released.waybill_no);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#result[data-result="refused"]');
    const [again] = await ok(server, admin, 'GET', '/gates/G1/decisions');
    assert.equal(await page.textContent('#reason-en'), again.reason_en);
  } finally {
    bridge.close();
  }
  assertNoProblems(page);
  await page.context().close();
});

test('a picker is refused the gate page and the gate API', async () => {
  const page = await newPage(browser, { locale: 'zh-CN' });
  await logInVia(page, server, 'pia', PASSWORD, '/gate');
  await page.waitForSelector('#denied:not([hidden])');
  assert.equal(await page.isHidden('#main'), true);
  assert.equal(await page.textContent('#denied h1'), '无权使用此页面');
  assert.match(await page.textContent('#denied-text'), /闸口保安.*pia.*拣货员/);
  await shot(page, 'gate-5-picker-denied');
  await assertAccessible(page, 'gate page, denied');
  const pia = await page.evaluate(() => sessionStorage.getItem('bondgate.token'));
  assert.equal((await call(server, pia, 'POST', '/gates/G1/scans', { code: 'X' })).status, 403);
  assert.equal((await call(server, pia, 'GET', '/gates')).status, 403);
  // Logout ends the session on the server too.
  await page.click('#denied-logout');
  await page.waitForURL(`${server.url}/login`);
  assert.equal((await call(server, pia, 'GET', '/auth/me')).status, 401);
  assertNoProblems(page);
  await page.context().close();
});

test('the live feed carries gate decisions to guards only, typed, with heartbeats', async () => {
  const guard = await login(server, 'gus');
  const picker = await login(server, 'pia');
  const guardFeed = feed(guard, 10_000, (e) => e.type === 'gate_decision' && e.code === 'FEED-1');
  const pickerFeed = feed(picker, 3_000);
  await new Promise((r) => setTimeout(r, 500));
  await ok(server, guard, 'POST', '/gates/G1/scans', { code: 'FEED-1' });
  const seen = await guardFeed;
  const d = seen.find((e) => e.type === 'gate_decision');
  assert.equal(d.gate, 'G1');
  assert.equal(d.result, 'refused');
  assert.ok(d.reason_zh && d.reason_en);
  assert.ok(seen.some((e) => e.comment === ': open'), JSON.stringify(seen));
  assert.deepEqual((await pickerFeed).filter((e) => e.type === 'gate_decision'), []);
  assert.equal((await call(server, null, 'GET', '/events')).status, 401);
});
